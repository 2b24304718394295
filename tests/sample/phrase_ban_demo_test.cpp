// Phrase bans on the demo narrator: a phrase the model really writes is banned, rewound and never streamed.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "backend/generator.h"
#include "eval/tells.h"
#include "model/model.h"
#include "protocol/validator.h"
#include "sample/constrained.h"
#include "sample/phrase_ban.h"
#include "text/chat_template.h"

namespace fabula {
namespace {

const std::string kDemoModel = std::string(FABULA_SOURCE_DIR) + "/models/fabula-demo-v1.gguf";
constexpr const char* kSystem =
    "You narrate a slice-of-life visual novel. Use only the listed cast. Drive the stage with [TOOL: ...] lines.";
constexpr const char* kUser =
    "Cast: Hana, Mio. Place: rooftop. Time: after school.\n"
    "Expressions: neutral, smile, laugh, sad, angry, surprised, embarrassed.\n"
    "The player chose: \"Look around\".\nWrite the next beat.";

bool plain_word(const std::string& w) {
  if (w.size() < 3) return false;
  for (char c : w)
    if (c < 'a' || c > 'z') return false;
  return true;
}

// Two adjacent prose words the text really contains (past its first few words, so a rewind has room), or "".
std::string pick_phrase(const std::string& text) {
  const auto words = phrase_words(text);
  for (size_t i = 6; i + 1 < words.size(); ++i)
    if (plain_word(words[i].word) && plain_word(words[i + 1].word)) return words[i].word + " " + words[i + 1].word;
  return "";
}

struct Demo {
  std::unique_ptr<Model> model;
  std::optional<Tokenizer> tok;
  std::vector<int32_t> prompt;

  static std::unique_ptr<Demo> load() {
    auto d = std::make_unique<Demo>();
    auto m = Model::load(kDemoModel);
    if (!m.ok()) return nullptr;
    d->model = std::move(*m);
    auto t = Tokenizer::from_gguf(d->model->gguf());
    if (!t.ok()) return nullptr;
    d->tok = std::move(*t);
    auto tmpl = d->tok->chat_template().empty() ? Result<ChatTemplate>(ChatTemplate::gemma4())
                                                : ChatTemplate::detect(d->tok->chat_template());
    if (!tmpl.ok()) return nullptr;
    const std::vector<ChatMessage> messages = {{"system", kSystem}, {"user", kUser}};
    auto text = tmpl->render(messages);
    if (!text.ok()) return nullptr;
    d->prompt = d->tok->encode(*text, false, true);
    return d;
  }
};

TEST(PhraseBanDemo, PhraseTheModelWritesIsRewoundAndNeverStreamed) {
  if (!std::filesystem::exists(kDemoModel)) FAIL() << "no " << kDemoModel;
  auto demo = Demo::load();
  ASSERT_NE(demo, nullptr);
  SessionOptions so;
  so.n_ctx = 1024;
  Session session(*demo->model, so);
  Generator gen(*demo->tok, session);
  GenerationParams p;
  p.sampler.temperature = 1.0f;
  p.sampler.top_p = 0.95f;
  p.sampler.seed = 3;
  p.sampler.repeat_penalty = 1.1f;  // the penalty window must be rewound too
  p.n_predict = 200;
  auto plain = gen.generate(demo->prompt, p);
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  const std::string phrase = pick_phrase(plain->content);
  ASSERT_FALSE(phrase.empty()) << plain->content;
  auto matcher = std::make_shared<const PhraseMatcher>(std::vector<std::string>{phrase});
  ASSERT_TRUE(matcher->find_completed(plain->content, 0, true).has_value());

  // Same seed: the draws are identical up to the phrase, so it is produced, caught and rewound.
  p.banned_phrases = matcher;
  std::string streamed;
  int callbacks = 0;
  auto banned = gen.generate(demo->prompt, p, [&](const GeneratedToken& t) {
    streamed += t.content;
    ++callbacks;
    // Nothing retracted ever reaches the callback: every prefix streamed is free of the phrase.
    EXPECT_FALSE(matcher->find_completed(streamed, 0, true).has_value()) << streamed;
    return true;
  });
  ASSERT_TRUE(banned.ok()) << banned.error().message;
  EXPECT_GT(banned->timings.backtracks, 0) << "phrase \"" << phrase << "\" in\n" << plain->content;
  EXPECT_FALSE(matcher->find_completed(banned->content, 0, true).has_value()) << phrase << "\n" << banned->content;
  EXPECT_EQ(streamed, banned->content);
  EXPECT_EQ(callbacks, static_cast<int>(banned->tokens.size()));  // one callback per kept token
  EXPECT_NE(banned->content, plain->content);
  // Tokens are the kept ones: decoding them gives the content (no EOG id adds text).
  EXPECT_EQ(demo->tok->decode(banned->tokens), banned->content);
}

TEST(PhraseBanDemo, ConstrainedWithTellBansStaysValid) {
  if (!std::filesystem::exists(kDemoModel)) FAIL() << "no " << kDemoModel;
  auto demo = Demo::load();
  ASSERT_NE(demo, nullptr);
  SessionOptions so;
  so.n_ctx = 1024;
  Session session(*demo->model, so);
  Generator gen(*demo->tok, session);
  const protocol::Manifest manifest = protocol::Manifest::default_manifest();
  auto tells = eval::load_phrase_bans("", true);
  ASSERT_TRUE(tells.ok()) << tells.error().message;
  auto c = ProtocolConstraint::create(*demo->tok, manifest, {"Hana", "Mio"});
  ASSERT_TRUE(c.ok()) << c.error().message;
  GenerationParams p;
  p.sampler.temperature = 1.5f;
  p.sampler.top_p = 0.95f;
  p.sampler.seed = 5;
  p.n_predict = 600;
  p.constraint = *c;
  p.banned_phrases = *tells;
  auto r = gen.generate(demo->prompt, p);
  ASSERT_TRUE(r.ok()) << r.error().message;
  protocol::ValidateOptions vo;
  vo.locked_cast = {"Hana", "Mio"};
  auto rep = protocol::validate_beat(r->content, manifest, vo);
  EXPECT_EQ(r->stop_type, StopType::kEos) << r->content;
  EXPECT_TRUE(rep.valid) << (rep.codes().empty() ? "" : rep.codes()[0]) << "\n" << r->content;
  EXPECT_FALSE((*tells)->find_completed(r->content, 0, true).has_value()) << r->content;
}

// `fabula run --ban-list FILE` end to end: the phrase of an unbanned run is gone and the log counts backtracks.
std::string run_cli(const std::string& args) {
  const std::string cmd = std::string(FABULA_BINARY) + " run " + args + " 2>&1";
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

TEST(PhraseBanDemo, RunCommandBanList) {
  if (!std::filesystem::exists(kDemoModel)) FAIL() << "no " << kDemoModel;
  const std::string common = "-m " + kDemoModel + " --chat 'Cast: Hana, Mio. Place: rooftop. Time: after school.\n"
                             "The player chose: \"Look around\".\nWrite the next beat.' --temp 1.0 --seed 7 -n 160 -t 2";
  const std::string plain = run_cli(common);
  const size_t log_at = plain.find("prompt ");  // the timing log line follows the text
  const std::string phrase = pick_phrase(plain.substr(0, log_at));
  ASSERT_FALSE(phrase.empty()) << plain;
  const std::string list = ::testing::TempDir() + "/fabula-ban-list.txt";
  {
    std::ofstream f(list);
    f << "# banned for the test\n" << phrase << "\n";
  }
  const std::string banned = run_cli(common + " --ban-list " + list);
  PhraseMatcher m({phrase});
  const size_t text_end = banned.find("phrase bans:");
  ASSERT_NE(text_end, std::string::npos) << banned;
  EXPECT_FALSE(m.find_completed(banned.substr(0, text_end), 0, true).has_value()) << phrase << "\n" << banned;
  int backtracks = -1;
  ASSERT_EQ(std::sscanf(banned.c_str() + text_end, "phrase bans: %d backtracks", &backtracks), 1) << banned;
  EXPECT_GT(backtracks, 0) << banned;
}

}  // namespace
}  // namespace fabula

// Black-box HTTP tests of `fabula serve` endpoints on the demo narrator (in-process server, loopback).
#include <cmath>
#include <cstdio>
#include <string>

#include "protocol/validator.h"
#include "sample/phrase_ban.h"
#include "server_test_util.h"

namespace fabula::server_test {
namespace {

constexpr const char* kSystem =
    "You narrate a slice-of-life visual novel. Use only the listed cast. Drive the stage with [TOOL: ...] lines.";

class ServerApi : public DemoServerSuite<ServerApi> {
 public:
  static server::ServerOptions options() {
    server::ServerOptions o;
    o.n_parallel = 2;
    o.n_ctx = 1024;
    o.n_threads = 2;
    return o;
  }

 protected:
  httplib::Client client() { return rs_->client(); }
  static json chat_messages(const std::string& user) {
    return json::array({json{{"role", "system"}, {"content", kSystem}}, json{{"role", "user"}, {"content", user}}});
  }
  std::string chat_prompt(const std::string& user) {
    auto c = client();
    json r = post_json(c, "/apply-template", json{{"messages", chat_messages(user)}});
    return r.value("prompt", "");
  }
};

TEST_F(ServerApi, HealthPropsModelsSlots) {
  auto c = client();
  auto h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(json::parse(h->body)["status"], "ok");
  auto p = c.Get("/props");
  ASSERT_TRUE(p);
  json props = json::parse(p->body);
  EXPECT_EQ(props["total_slots"], 2);
  EXPECT_EQ(props["cache_type_k"], "f32");  // --cache-type-k / --cache-type-v (docs/KV_CACHE.md)
  EXPECT_EQ(props["cache_type_v"], "f32");
  EXPECT_EQ(props["default_generation_settings"]["n_ctx"], 1024);
  EXPECT_NE(props["chat_template"].get<std::string>().find("<|turn>"), std::string::npos);
  auto m = c.Get("/v1/models");
  ASSERT_TRUE(m);
  json models = json::parse(m->body);
  EXPECT_EQ(models["object"], "list");
  EXPECT_EQ(models["data"][0]["id"], "fabula-demo-v1.gguf");
  EXPECT_EQ(models["data"][0]["meta"]["n_vocab"], 2273);
  auto s = c.Get("/slots");
  ASSERT_TRUE(s);
  EXPECT_EQ(json::parse(s->body).size(), 2u);
}

TEST_F(ServerApi, TokenizeDetokenizeRoundTrip) {
  auto c = client();
  const std::string text = "<|turn>user\nHello, Sakura!<turn|>";
  json t = post_json(c, "/tokenize", json{{"content", text}});
  ASSERT_TRUE(t["tokens"].is_array());
  ASSERT_GT(t["tokens"].size(), 3u);
  EXPECT_EQ(t["tokens"][0], 5);  // <|turn> parsed as the special token
  json d = post_json(c, "/detokenize", json{{"tokens", t["tokens"]}});
  EXPECT_EQ(d["content"], "user\nHello, Sakura!");  // control tokens are not rendered
  json pieces = post_json(c, "/tokenize", json{{"content", "Hi é"}, {"with_pieces", true}, {"add_special", true}});
  std::string joined;
  ASSERT_TRUE(pieces["tokens"].is_array());
  EXPECT_EQ(pieces["tokens"][0]["id"], 2);  // <bos> with add_special
  for (const json& p : pieces["tokens"]) {
    ASSERT_TRUE(p.contains("id"));
    if (p["piece"].is_string()) joined += p["piece"].get<std::string>();
    else for (const json& b : p["piece"]) joined += static_cast<char>(b.get<int>());
  }
  EXPECT_EQ(joined, "<bos>Hi é");
}

TEST_F(ServerApi, CompletionFieldsAndTimings) {
  auto c = client();
  const std::string prompt = chat_prompt("Sakura waves from the gate.");
  json r = post_json(c, "/completion", json{{"prompt", prompt}, {"n_predict", 12}, {"temperature", 0}, {"return_tokens", true}, {"ignore_eos", true}});
  EXPECT_EQ(r["tokens_predicted"], 12);
  EXPECT_EQ(r["tokens"].size(), 12u);
  EXPECT_EQ(r["stop_type"], "limit");
  EXPECT_EQ(r["stop"], true);
  EXPECT_GT(r["tokens_evaluated"].get<int>(), 20);
  const json& t = r["timings"];
  EXPECT_EQ(t["predicted_n"], 12);
  EXPECT_EQ(t["prompt_n"].get<int>() + t["cache_n"].get<int>(), r["tokens_evaluated"].get<int>());
  EXPECT_GT(t["predicted_per_second"].get<double>(), 0);
  EXPECT_FALSE(r["content"].get<std::string>().empty());
  json d = post_json(c, "/detokenize", json{{"tokens", r["tokens"]}});
  EXPECT_EQ(d["content"], r["content"]);
  EXPECT_EQ(r["generation_settings"]["temperature"], 0);
  EXPECT_EQ(r["generation_settings"]["n_predict"], 12);
}

TEST_F(ServerApi, StreamAndNonStreamAgreeForTheSameSeed) {
  auto c = client();
  const std::string prompt = chat_prompt("Haruto drops his umbrella.");
  json body{{"prompt", prompt}, {"n_predict", 24}, {"temperature", 1.0}, {"top_k", 0}, {"top_p", 0.95}, {"min_p", 0}, {"seed", 1234}};
  json whole = post_json(c, "/completion", body);
  body["stream"] = true;
  int status = 0;
  auto events = post_stream(c, "/completion", body, &status);
  EXPECT_EQ(status, 200);
  ASSERT_GE(events.size(), 2u);
  std::string text;
  int n_tokens = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    json e = json::parse(events[i], nullptr, false);
    ASSERT_FALSE(e.is_discarded()) << events[i];
    text += e["content"].get<std::string>();
    n_tokens += static_cast<int>(e["tokens"].size());
    EXPECT_EQ(e["stop"].get<bool>(), i + 1 == events.size());
    if (i + 1 == events.size()) {
      EXPECT_EQ(e["tokens_predicted"], whole["tokens_predicted"]);
      EXPECT_EQ(e["stop_type"], whole["stop_type"]);
      EXPECT_TRUE(e["timings"].contains("predicted_per_second"));
    }
  }
  EXPECT_EQ(text, whole["content"].get<std::string>());
  const int predicted = whole["tokens_predicted"].get<int>();
  EXPECT_EQ(n_tokens, whole["stop_type"] == "eos" ? predicted - 1 : predicted);
}

TEST_F(ServerApi, PromptCacheReusesThePrefixAndChangesNothing) {
  auto c = client();
  const std::string prompt = chat_prompt("The bell rings for lunch.");
  json body{{"prompt", prompt}, {"n_predict", 8}, {"temperature", 0}, {"id_slot", 1}};
  json first = post_json(c, "/completion", body);
  json second = post_json(c, "/completion", body);
  EXPECT_EQ(second["timings"]["cache_n"].get<int>(), second["tokens_evaluated"].get<int>() - 1);
  EXPECT_EQ(second["timings"]["prompt_n"], 1);
  EXPECT_EQ(first["content"], second["content"]);
  body["cache_prompt"] = false;
  json cold = post_json(c, "/completion", body);
  EXPECT_EQ(cold["timings"]["cache_n"], 0);
  EXPECT_EQ(cold["content"], first["content"]);
  // A longer prompt sharing the prefix decodes only the new part.
  body["cache_prompt"] = true;
  body["prompt"] = prompt + "Sakura";
  json longer = post_json(c, "/completion", body);
  // (the tokenisation at the seam may differ by a token or two)
  EXPECT_GE(longer["timings"]["cache_n"].get<int>(), first["tokens_evaluated"].get<int>() - 3);
  EXPECT_LE(longer["timings"]["prompt_n"].get<int>(), 8);
  EXPECT_EQ(longer["timings"]["cache_n"].get<int>() + longer["timings"]["prompt_n"].get<int>(), longer["tokens_evaluated"].get<int>());
}

TEST_F(ServerApi, StopStringsCutTheOutput) {
  auto c = client();
  const std::string prompt = chat_prompt("Sakura opens the window.");
  json free = post_json(c, "/completion", json{{"prompt", prompt}, {"n_predict", 40}, {"temperature", 0}, {"ignore_eos", true}});
  const std::string text = free["content"];
  ASSERT_GT(text.size(), 20u);
  const std::string stop = text.substr(10, 4);
  const size_t at = text.find(stop);
  json cut = post_json(c, "/completion", json{{"prompt", prompt}, {"n_predict", 40}, {"temperature", 0}, {"ignore_eos", true}, {"stop", {stop}}});
  EXPECT_EQ(cut["content"], text.substr(0, at));
  EXPECT_EQ(cut["stop_type"], "word");
  EXPECT_EQ(cut["stopping_word"], stop);
  // Streaming releases the same text (the held-back tail is dropped, not sent).
  auto events = post_stream(c, "/completion", json{{"prompt", prompt}, {"n_predict", 40}, {"temperature", 0}, {"ignore_eos", true}, {"stop", {stop}}, {"stream", true}});
  std::string streamed;
  for (const auto& e : events) streamed += json::parse(e)["content"].get<std::string>();
  EXPECT_EQ(streamed, text.substr(0, at));
}

TEST_F(ServerApi, ProbabilitiesAreNormalisedAndSorted) {
  auto c = client();
  json r = post_json(c, "/completion", json{{"prompt", chat_prompt("Rain.")}, {"n_predict", 5}, {"temperature", 0}, {"n_probs", 4}, {"ignore_eos", true}});
  const json& probs = r["completion_probabilities"];
  ASSERT_EQ(probs.size(), 5u);
  for (const json& p : probs) {
    ASSERT_EQ(p["top_logprobs"].size(), 4u);
    EXPECT_EQ(p["top_logprobs"][0]["id"], p["id"]);  // greedy picks the most likely
    double sum = 0, prev = 0;
    for (size_t i = 0; i < 4; ++i) {
      const double lp = p["top_logprobs"][i]["logprob"];
      EXPECT_LE(lp, 1e-6);
      if (i > 0) {
        EXPECT_LE(lp, prev + 1e-6);
      }
      prev = lp;
      sum += std::exp(lp);
    }
    EXPECT_LE(sum, 1.0 + 1e-4);
  }
}

TEST_F(ServerApi, LogitBiasFormsBanAndForce) {
  auto c = client();
  const std::string prompt = chat_prompt("Haruto laughs.");
  json base = post_json(c, "/completion", json{{"prompt", prompt}, {"n_predict", 1}, {"temperature", 0}, {"return_tokens", true}, {"ignore_eos", true}});
  const int first = base["tokens"][0];
  for (const json& bias : {json::array({json::array({first, false})}), json{{std::to_string(first), false}},
                           json::array({json::array({first, -1e9})})}) {
    json r = post_json(c, "/completion", json{{"prompt", prompt}, {"n_predict", 1}, {"temperature", 0}, {"return_tokens", true}, {"logit_bias", bias}});
    ASSERT_EQ(r["tokens"].size(), 1u) << bias.dump();
    EXPECT_NE(r["tokens"][0], first) << bias.dump();
  }
  json forced = post_json(c, "/completion", json{{"prompt", prompt}, {"n_predict", 3}, {"temperature", 0}, {"return_tokens", true},
                                                 {"logit_bias", json::array({json::array({300, 100.0})})}});
  EXPECT_EQ(forced["tokens"], json::array({300, 300, 300}));
  int status = 0;
  post_json(c, "/completion", json{{"prompt", prompt}, {"logit_bias", json::array({json::array({999999, 1})})}}, &status);
  EXPECT_EQ(status, 400);
}

TEST_F(ServerApi, TokenAndMixedPromptsMatchTheText) {
  auto c = client();
  const std::string prompt = chat_prompt("Morning.");
  json ids = post_json(c, "/tokenize", json{{"content", prompt}});
  json by_text = post_json(c, "/completion", json{{"prompt", prompt}, {"n_predict", 6}, {"temperature", 0}});
  json by_ids = post_json(c, "/completion", json{{"prompt", ids["tokens"]}, {"n_predict", 6}, {"temperature", 0}});
  EXPECT_EQ(by_ids["content"], by_text["content"]);
  EXPECT_EQ(by_ids["tokens_evaluated"], by_text["tokens_evaluated"]);
  // Mixed: the first two ids, then the rest as text.
  json first_two = post_json(c, "/detokenize", json{{"tokens", {ids["tokens"][0], ids["tokens"][1]}}});
  (void)first_two;
  json mixed_prompt = json::array({ids["tokens"][0], ids["tokens"][1]});
  json rest_ids = json::array();
  for (size_t i = 2; i < ids["tokens"].size(); ++i) rest_ids.push_back(ids["tokens"][i]);
  mixed_prompt.push_back(post_json(c, "/detokenize", json{{"tokens", rest_ids}})["content"]);
  json mixed = post_json(c, "/completion", json{{"prompt", mixed_prompt}, {"n_predict", 6}, {"temperature", 0}});
  EXPECT_EQ(mixed["content"].is_string(), true);
  EXPECT_GT(mixed["tokens_evaluated"].get<int>(), 2);
}

TEST_F(ServerApi, ContextOverflowIsAClear400) {
  auto c = client();
  json ids = json::array();
  for (int i = 0; i < 1100; ++i) ids.push_back(300);
  int status = 0;
  json r = post_json(c, "/completion", json{{"prompt", ids}, {"n_predict", 4}}, &status);
  EXPECT_EQ(status, 400);
  EXPECT_EQ(r["error"]["type"], "exceed_context_size_error");
  EXPECT_EQ(r["error"]["n_prompt_tokens"], 1100);
  EXPECT_NE(r["error"]["message"].get<std::string>().find("1024"), std::string::npos);
}

TEST_F(ServerApi, ChatCompletionStreamEndsWithDoneAndMatchesNonStream) {
  auto c = client();
  json body{{"messages", chat_messages("Sakura finds a letter in her shoe locker.")}, {"max_tokens", 32}, {"temperature", 0.9}, {"seed", 7}};
  json whole = post_json(c, "/v1/chat/completions", body);
  ASSERT_TRUE(whole.contains("choices")) << whole.dump();
  const std::string content = whole["choices"][0]["message"]["content"];
  EXPECT_EQ(whole["object"], "chat.completion");
  EXPECT_EQ(whole["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(content.find("<|channel>"), std::string::npos);
  EXPECT_EQ(content.find("<channel|>"), std::string::npos);
  EXPECT_EQ(whole["usage"]["completion_tokens"], whole["timings"]["predicted_n"]);
  body["stream"] = true;
  auto events = post_stream(c, "/v1/chat/completions", body);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string streamed;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    json e = json::parse(events[i]);
    EXPECT_EQ(e["object"], "chat.completion.chunk");
    const json& delta = e["choices"][0]["delta"];
    if (delta.contains("content") && delta["content"].is_string()) {
      const std::string piece = delta["content"];
      EXPECT_EQ(piece.find("<|channel>"), std::string::npos);
      EXPECT_EQ(piece.find("<channel|>"), std::string::npos);
      streamed += piece;
    }
    if (i + 2 == events.size()) {
      EXPECT_EQ(e["choices"][0]["finish_reason"], whole["choices"][0]["finish_reason"]);
    }
  }
  EXPECT_EQ(streamed, content);
}

// Forces thought blocks with logit_bias + frequency penalty, then checks the chat split against the raw /completion
// text of the same prompt and settings: reasoning = inside the markers, content = after them, stream = non-stream.
// <|channel> (7) gets +100 (used once: the penalty then buries it); the bias of <channel|> (8) decides where the
// block closes: never (unclosed block: all reasoning), at once (empty block), or after some text (the model's
// logits decide which bias does that, so a small range is scanned).
TEST_F(ServerApi, ThoughtBlockSplitsExactly) {
  auto c = client();
  json messages = chat_messages("Haruto waits at the station.");
  const std::string prompt = chat_prompt("Haruto waits at the station.");
  bool saw_unclosed = false, saw_empty = false, saw_both = false;
  std::vector<double> biases = {0.0, 80.0};
  for (double b : {58.6, 59.0, 59.4, 59.6, 59.8, 59.95}) biases.push_back(b);
  for (double b8 : biases) {
    json sampling{{"temperature", 0}, {"n_predict", 24}, {"frequency_penalty", 60.0}, {"repeat_last_n", -1},
                  {"logit_bias", json::array({json::array({7, 100.0}), json::array({8, b8})})}};
    json raw_body = sampling;
    raw_body["prompt"] = prompt;
    const std::string text = post_json(c, "/completion", raw_body)["content"];
    ASSERT_EQ(text.rfind("<|channel>", 0), 0u) << text;
    const size_t close = text.find("<channel|>");
    std::string reasoning = text.substr(10, close == std::string::npos ? std::string::npos : close - 10);
    if (reasoning.rfind("thought\n", 0) == 0) reasoning = reasoning.substr(8);
    const std::string after = close == std::string::npos ? "" : text.substr(close + 10);
    if (after.find("<|channel>") != std::string::npos || after.find("<channel|>") != std::string::npos) continue;
    if (close == std::string::npos) saw_unclosed = true;
    else if (reasoning.empty()) saw_empty = true;
    else if (!after.empty()) saw_both = true;

    json chat_body = sampling;
    chat_body["messages"] = messages;
    json chat = post_json(c, "/v1/chat/completions", chat_body);
    const json& msg = chat["choices"][0]["message"];
    EXPECT_EQ(msg["content"], after) << "bias " << b8 << ": " << chat.dump();
    EXPECT_EQ(msg.value("reasoning_content", ""), reasoning) << "bias " << b8 << ": " << text;
    chat_body["stream"] = true;
    std::string s_reasoning, s_content;
    for (const auto& e : post_stream(c, "/v1/chat/completions", chat_body)) {
      if (e == "[DONE]") continue;
      const json ev = json::parse(e);
      const json& delta = ev["choices"][0]["delta"];
      if (delta.contains("reasoning_content")) s_reasoning += delta["reasoning_content"].get<std::string>();
      if (delta.contains("content") && delta["content"].is_string()) s_content += delta["content"].get<std::string>();
    }
    EXPECT_EQ(s_content, after) << "bias " << b8;
    EXPECT_EQ(s_reasoning, reasoning) << "bias " << b8;
  }
  EXPECT_TRUE(saw_unclosed);
  EXPECT_TRUE(saw_empty);
  if (!saw_both) std::printf("note: no bias in the scanned range closed the block after some text\n");
}

TEST_F(ServerApi, ThinkingSwitchesChangeThePrompt) {
  auto c = client();
  json off = post_json(c, "/apply-template", json{{"messages", chat_messages("Hi")}, {"reasoning_effort", "none"}});
  json kw = post_json(c, "/apply-template", json{{"messages", chat_messages("Hi")}, {"chat_template_kwargs", {{"enable_thinking", false}}}});
  EXPECT_EQ(off["prompt"], kw["prompt"]);
  const std::string p = off["prompt"];
  EXPECT_EQ(p.rfind("<bos><|turn>system\n", 0), 0u) << p;
  EXPECT_NE(p.find("<|turn>model\n"), std::string::npos);
}

TEST_F(ServerApi, MetricsCountTokens) {
  auto c = client();
  post_json(c, "/completion", json{{"prompt", "Hello"}, {"n_predict", 3}, {"temperature", 0}, {"ignore_eos", true}});
  auto m = c.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 200);
  for (const char* name : {"llamacpp:prompt_tokens_total", "llamacpp:tokens_predicted_total", "llamacpp:requests_processing",
                           "llamacpp:requests_deferred", "llamacpp:n_slots 2"})
    EXPECT_NE(m->body.find(name), std::string::npos) << name;
  const std::string counter = "\nllamacpp:tokens_predicted_total ";
  const size_t at = m->body.find(counter);
  ASSERT_NE(at, std::string::npos);
  // The value starts right after the counter's name and its space (the old +34 skipped its first digit).
  EXPECT_GE(std::stod(m->body.substr(at + counter.size())), 3.0);
}

// Fabula's decoding extensions: "vn_protocol" (+ "vn_cast") and "banned_phrases".
constexpr const char* kScene =
    "Cast: Hana, Mio. Place: rooftop. Time: after school.\n"
    "Expressions: neutral, smile, laugh, sad, angry, surprised, embarrassed.\n"
    "The player chose: \"Look around\".\nWrite the next beat.";

TEST_F(ServerApi, VnProtocolAtHighTemperatureReturnsAValidBeat) {
  auto c = client();
  const std::string prompt = chat_prompt(kScene);
  const std::vector<std::string> cast = {"Hana", "Mio"};
  json r = post_json(c, "/completion", json{{"prompt", prompt}, {"vn_protocol", true}, {"vn_cast", cast},
                                            {"temperature", 1.5}, {"top_k", 0}, {"top_p", 0.95}, {"min_p", 0},
                                            {"seed", 21}, {"n_predict", 700}});
  ASSERT_TRUE(r.contains("content")) << r.dump();
  EXPECT_EQ(r["stop_type"], "eos") << r["content"];
  protocol::ValidateOptions vo;
  vo.locked_cast = cast;
  auto rep = protocol::validate_beat(r["content"].get<std::string>(), protocol::Manifest::default_manifest(), vo);
  EXPECT_TRUE(rep.valid) << (rep.codes().empty() ? "" : rep.codes()[0]) << "\n" << r["content"].get<std::string>();
}

TEST_F(ServerApi, BannedPhraseNeverReachesTheStream) {
  auto c = client();
  const std::string prompt = chat_prompt(kScene);
  json body{{"prompt", prompt}, {"temperature", 1.0}, {"top_k", 0}, {"top_p", 0.95}, {"min_p", 0}, {"seed", 8}, {"n_predict", 160}};
  json plain = post_json(c, "/completion", body);
  // A phrase this request really produces: two adjacent lowercase words a few words in.
  const auto words = phrase_words(plain["content"].get<std::string>());
  std::string phrase;
  for (size_t i = 6; i + 1 < words.size() && phrase.empty(); ++i) {
    auto plain_word = [](const std::string& w) {
      return w.size() >= 3 && w.find_first_not_of("abcdefghijklmnopqrstuvwxyz") == std::string::npos;
    };
    if (plain_word(words[i].word) && plain_word(words[i + 1].word)) phrase = words[i].word + " " + words[i + 1].word;
  }
  ASSERT_FALSE(phrase.empty()) << plain["content"];
  body["banned_phrases"] = json::array({phrase});
  body["stream"] = true;
  int status = 0;
  auto events = post_stream(c, "/completion", body, &status);
  EXPECT_EQ(status, 200);
  ASSERT_GE(events.size(), 2u);
  std::string text;
  json last;
  for (const auto& e : events) {
    last = json::parse(e, nullptr, false);
    ASSERT_FALSE(last.is_discarded()) << e;
    text += last.value("content", "");
  }
  const PhraseMatcher m({phrase});
  EXPECT_FALSE(m.find_completed(text, 0, true).has_value()) << phrase << "\n" << text;
  EXPECT_GT(last["timings"]["backtracks"].get<int>(), 0) << phrase << "\n" << plain["content"];
  EXPECT_EQ(last["timings"]["predicted_n"].get<int>(), last["tokens_predicted"].get<int>());
}

TEST_F(ServerApi, DecodingFieldsWithBadTypesAre400NamingTheField) {
  auto c = client();
  const json base{{"prompt", "Hello"}, {"n_predict", 4}};
  auto expect_400 = [&](const char* field, json value, const std::string& mentions) {
    json body = base;
    body[field] = std::move(value);
    if (std::string(field) == "vn_cast") body["vn_protocol"] = true;
    int status = 0;
    json r = post_json(c, "/completion", body, &status);
    EXPECT_EQ(status, 400) << field << ": " << r.dump();
    EXPECT_NE(r["error"]["message"].get<std::string>().find(mentions), std::string::npos) << r.dump();
  };
  expect_400("vn_protocol", "yes", "vn_protocol: expected a boolean");
  expect_400("vn_cast", "Hana", "vn_cast: expected an array");
  expect_400("vn_cast", json::array({"Hana", 3}), "vn_cast[1]: expected a string");
  expect_400("vn_cast", json::array({"Nobody"}), "vn_cast");  // not in the story: refused, never unconstrained
  expect_400("banned_phrases", "a b", "banned_phrases: expected an array");
  expect_400("banned_phrases", json::array({json::object()}), "banned_phrases[0]: expected a string");
  int status = 0;
  json r = post_json(c, "/completion", json{{"prompt", "Hello"}, {"vn_cast", json::array({"Hana"})}}, &status);
  EXPECT_EQ(status, 400) << r.dump();  // a cast lock without the protocol constraint would be silently ignored
}

}  // namespace
}  // namespace fabula::server_test

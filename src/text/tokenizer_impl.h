// Tokenizer internals shared by the loaders (tokenizer.json, GGUF) and the BPE encoder; not a public header.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "text/tokenizer.h"

namespace fabula {

// Open-addressing map (id_a, id_b) -> (rank, merged id); 515k merges need fast build and lookup.
class MergeTable {
 public:
  void reserve(size_t n);
  // First insertion of a pair wins (lowest rank). Returns false for a duplicate.
  bool insert(int32_t a, int32_t b, int32_t rank, int32_t merged);
  // Rank, or -1 if the pair does not merge; `merged` receives the result id.
  int32_t find(int32_t a, int32_t b, int32_t* merged) const {
    if (slots_.empty()) return -1;
    const uint64_t key = pack(a, b);
    size_t i = hash(key) & mask_;
    while (true) {
      const Slot& s = slots_[i];
      if (s.key == kEmpty) return -1;
      if (s.key == key) {
        *merged = s.merged;
        return s.rank;
      }
      i = (i + 1) & mask_;
    }
  }
  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  struct Slot {
    uint64_t key = kEmpty;
    int32_t rank = 0;
    int32_t merged = 0;
  };
  static uint64_t pack(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  static size_t hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return size_t(k);
  }
  void grow();
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

// Byte trie over the split-out (added / special) tokens for leftmost-longest matching on raw text.
class TokenTrie {
 public:
  void insert(std::string_view text, int32_t id);
  // Longest token starting at text[pos]; returns its id and sets *len, or -1.
  int32_t match(std::string_view text, size_t pos, size_t* len) const;
  bool empty() const { return nodes_.size() <= 1; }

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> children;  // sorted by byte
    int32_t token = -1;
  };
  std::array<int32_t, 256> root_{};  // direct table for the first byte (0 = none)
  std::vector<Node> nodes_{Node{}};
};

// Open-addressing text -> id index over the vocab strings (faster to build and probe than unordered_map).
class TokenIndex {
 public:
  void build(const std::vector<std::string>& tokens);
  int32_t find(std::string_view s) const {
    if (slots_.empty()) return -1;
    const uint64_t h = hash(s);
    const uint32_t tag = uint32_t(h >> 32) | 1u;
    for (size_t i = size_t(h) & mask_;; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.tag == 0) return -1;
      if (slot.tag == tag && (*tokens_)[size_t(slot.id)] == s) return slot.id;
    }
  }
  static uint64_t hash(std::string_view s) {
    uint64_t h = 0xcbf29ce484222325ULL ^ s.size();
    size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
      uint64_t w;
      __builtin_memcpy(&w, s.data() + i, 8);
      h = (h ^ w) * 0x100000001b3ULL;
      h ^= h >> 29;
    }
    for (; i < s.size(); ++i) h = (h ^ uint8_t(s[i])) * 0x100000001b3ULL;
    h ^= h >> 32;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 29;
    return h;
  }

 private:
  struct Slot {
    uint32_t tag = 0;  // 0 = empty
    int32_t id = 0;
  };
  const std::vector<std::string>* tokens_ = nullptr;
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

enum class PreSplit {
  kNone,             // the whole normalised segment is one BPE word (HF Gemma: Split(" ") after ' ' -> '▁')
  kNewlineRuns,      // "[^\n]+|[\n]+" (llama.cpp gemma4)
  kSpaceWordRuns,    // "▁*[^▁\n]+|▁+|\n+" isolated (fabula demo trainer)
  kLiteral,          // Split on a literal string (HF "String" pattern) with a behaviour
};

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct Tokenizer::Impl {
  TokenizerInfo info;
  std::vector<std::string> tokens;
  std::vector<TokenType> types;
  std::vector<float> scores;
  TokenIndex token_ids;  // over `tokens` (never resized after finish())
  MergeTable merges;
  TokenTrie specials;                // tokens split out before normalisation
  std::array<int32_t, 256> byte_ids;  // <0xNN> ids, -1 if absent
  // Normalisation: Replace(" " -> "▁") and an optional prefix (HF "Prepend").
  bool replace_space = true;
  std::string prepend;
  PreSplit pre_split = PreSplit::kNone;
  std::string split_literal;
  SplitBehavior split_behavior = SplitBehavior::kIsolated;
  bool newline_run_whole = false;  // llama.cpp PR #21343: a newline run that is a token is emitted whole
  bool byte_fallback = true;
  bool ignore_merges = false;
  bool fuse_unk = true;
  int32_t bos = -1, eos = -1, unk = -1, pad = -1, mask = -1;
  bool add_bos = true;
  std::string chat_template;
  std::vector<int32_t> eog;

  // Builds token_ids, byte_ids and the trie of the split-out tokens; once, after tokens/types are filled.
  void finish(const std::vector<int32_t>& split_out);
  // The end-of-generation set: eos plus llama.cpp's EOG names present in the vocab; after bos/eos are known.
  void build_eog();
  int32_t lookup(std::string_view s) const { return token_ids.find(s); }
  void encode_segment(std::string_view raw, std::vector<int32_t>& out) const;
  void bpe_word(std::string_view word, std::vector<int32_t>& out) const;
};

// tokenizer.json read with a SAX parser: vocab and merges go straight into vectors (no DOM for 800k entries);
// everything else lands in `rest` as a small DOM (normalizer, pre_tokenizer, post_processor, model scalars).
struct HfTokenizerJson {
  struct Added {
    int64_t id = -1;
    std::string content;
    bool special = false;
  };
  std::vector<std::pair<std::string, int64_t>> vocab;
  std::vector<std::pair<std::string, std::string>> merges;
  std::vector<Added> added;
  nlohmann::json rest;
};
Result<HfTokenizerJson> parse_tokenizer_json(const std::string& path);

// tokenizer_config.json (optional) plus chat_template.jinja next to it.
struct HfTokenizerConfig {
  bool has_add_bos = false;
  bool add_bos = true;
  bool has_add_eos = false;
  bool add_eos = false;
  std::string bos, eos, unk, pad, mask;  // token texts ("" if not named)
  std::vector<std::string> extra_special;  // additional_special_tokens
  std::string chat_template;
};
// `config_path` "" looks for tokenizer_config.json next to `json_path`; a missing file is not an error.
Result<HfTokenizerConfig> read_tokenizer_config(const std::string& json_path, const std::string& config_path);

// Shared by the loaders: wraps a finished Impl.
Result<Tokenizer> tokenizer_from_impl(std::shared_ptr<Tokenizer::Impl> impl);

// The Gemma 4 tokens llama.cpp's converter forces to USER_DEFINED so chat parsers can read them.
bool is_gemma4_visible_token(std::string_view text);
// "<0xNN>" -> NN, else -1.
int parse_byte_token(std::string_view text);

}  // namespace fabula

// Gemma byte-fallback BPE tokenizer: loads tokenizer.json or GGUF metadata, encodes text to ids, decodes ids to text.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "format/gguf.h"

namespace fabula {

// llama.cpp / GGUF token types (tokenizer.ggml.token_type).
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,      // special: <bos>, <eos>, <|turn>, ... (skipped when decoding unless asked for)
  kUserDefined = 4,  // added tokens always rendered as text (<|channel>, <channel|>, ...)
  kUnused = 5,
  kByte = 6,         // <0xNN>
};

struct TokenizerInfo {
  std::string source;          // path it was loaded from
  std::string model;           // "gemma4" (GGUF tokenizer.ggml.model) or "BPE" (tokenizer.json)
  size_t n_merges = 0;
  bool newline_presplit = false;  // llama.cpp gemma4 mode (GGUF): text pre-split into newline / non-newline runs
};

class Tokenizer {
 public:
  // tokenizer.json (HF tokenizers). `config_path` (tokenizer_config.json) is optional: it supplies add_bos_token,
  // the bos/eos/pad/unk names and chat_template; "" looks for tokenizer_config.json next to the json file.
  static Result<Tokenizer> from_tokenizer_json(const std::string& path, const std::string& config_path = "");
  // GGUF metadata written by llama.cpp's or our converter (tokenizer.ggml.model = "gemma4").
  static Result<Tokenizer> from_gguf(const GgufFile& gguf);
  // A .gguf file (by magic) or a tokenizer.json.
  static Result<Tokenizer> load(const std::string& path);

  Tokenizer() = default;  // empty: n_tokens() == 0; only assign a loaded one to it

  // Special/added tokens in `text` are split out first (longest match) when `parse_special`; the rest is
  // normalised (' ' -> U+2581) and BPE-merged, with <0xNN> byte fallback. `add_bos` prepends bos_id().
  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special = true) const;
  // encode() with the tokenizer's own add_bos_token setting.
  std::vector<int32_t> encode(std::string_view text) const { return encode(text, add_bos(), true); }

  // Whole-sequence decode: U+2581 -> ' ', byte tokens reassembled (invalid UTF-8 -> U+FFFD).
  // Control tokens are skipped unless `render_control`; user-defined tokens are always rendered.
  std::string decode(std::span<const int32_t> ids, bool render_control = false) const;

  // Raw vocab text of a token ("▁Hello", "<0x0A>", "<bos>"); empty view for an id out of range.
  std::string_view token_text(int32_t id) const;
  // The bytes one token contributes to decoded text (may be part of a UTF-8 character).
  std::string token_bytes(int32_t id, bool render_control = false) const;
  // Exact vocab lookup; -1 if absent.
  int32_t find_token(std::string_view text) const;

  size_t n_tokens() const;
  TokenType token_type(int32_t id) const;
  // Ends generation: <eos>, <turn|>, <end_of_turn>, <|tool_response>, ... (llama.cpp's EOG set), plus eos_id().
  bool is_eog(int32_t id) const;
  const std::vector<int32_t>& eog_ids() const;

  int32_t bos_id() const;
  int32_t eos_id() const;
  bool add_bos() const;
  const std::string& chat_template() const;  // "" if the source has none
  const TokenizerInfo& info() const;

  struct Impl;

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;  // immutable once built, so copies are cheap and thread-safe
  friend Result<Tokenizer> tokenizer_from_impl(std::shared_ptr<Impl> impl);
};

// Feeds ids one at a time, returns the text they complete; never emits half a UTF-8 character.
class StreamingDetokenizer {
 public:
  explicit StreamingDetokenizer(const Tokenizer& tokenizer, bool render_control = false)
      : tokenizer_(&tokenizer), render_control_(render_control) {}

  // Appends the decoded text that is complete after `id` to `out` (returns the number of bytes appended).
  size_t feed(int32_t id, std::string& out);
  std::string feed(int32_t id) {
    std::string s;
    feed(id, s);
    return s;
  }
  // End of stream: any dangling partial character becomes U+FFFD.
  std::string flush();
  void reset() { pending_.clear(); }

 private:
  const Tokenizer* tokenizer_;
  bool render_control_;
  std::string pending_;  // bytes of an incomplete UTF-8 character
};

// GGUF tokenizer metadata from a tokenizer.json (+ optional tokenizer_config.json, "" to look next to it), in
// llama.cpp's gemma4 layout: tokenizer.ggml.model "gemma4", tokens, scores (-1000), token_type (BYTE for <0xNN>,
// CONTROL for special added tokens, USER_DEFINED for <|channel> <channel|> <|tool_call> <tool_call|>
// <|tool_response> <tool_response|> <|"|> and added tokens beyond the base vocab, NORMAL otherwise),
// merges ("a b"), bos/eos/unknown/padding(/mask) ids, add_bos_token, add_space_prefix=false, chat_template.
using GgufMetadata = std::vector<std::pair<std::string, GgufValue>>;
Result<GgufMetadata> tokenizer_gguf_metadata(const std::string& tokenizer_json_path,
                                             const std::string& tokenizer_config_path = "");

}  // namespace fabula

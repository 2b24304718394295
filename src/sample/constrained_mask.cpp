// The protocol recogniser applied to a vocabulary: per-token byte strings, first-byte buckets, the logit mask.
#include <cmath>
#include <limits>
#include <string_view>

#include "sample/constrained.h"

namespace fabula {

namespace {

// Bytes that change some free-text state's behaviour; a token without them ("plain") is accepted wholesale there.
bool structural(uint8_t b) {
  return b < 0x20 || b == 0x7F || b == '"' || b == ':' || b == '[' || b == ']' || b == '{' || b == '}' || b == '<' ||
         b == '\\';
}

// Well-formed UTF-8 made of whole characters (what ProtocolRecognizer::feed_byte accepts from a character start).
bool whole_utf8(std::string_view bytes) {
  size_t i = 0;
  while (i < bytes.size()) {
    const auto b = static_cast<uint8_t>(bytes[i]);
    if (b < 0x80) {
      ++i;
      continue;
    }
    if (b < 0xC2 || b > 0xF4) return false;
    const size_t need = b < 0xE0 ? 1 : b < 0xF0 ? 2 : 3;
    const uint8_t lo = b == 0xE0 ? 0xA0 : b == 0xF0 ? 0x90 : 0x80;
    const uint8_t hi = b == 0xED ? 0x9F : b == 0xF4 ? 0x8F : 0xBF;
    if (i + need >= bytes.size()) return false;  // the character does not end in this token
    for (size_t k = 1; k <= need; ++k) {
      const auto c = static_cast<uint8_t>(bytes[i + k]);
      if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xBF)) return false;
    }
    i += need + 1;
  }
  return true;
}

// Gemma's visible markers: <|channel>, <channel|>, <|tool_call>, <|"|>, ...
bool looks_like_marker(std::string_view text) {
  return text.find("<|") != std::string_view::npos || text.find("|>") != std::string_view::npos;
}

}  // namespace

Result<std::shared_ptr<const ConstraintVocab>> ConstraintVocab::build(const Tokenizer& tokenizer) {
  const size_t n = tokenizer.n_tokens();
  if (n == 0) return make_error(ErrorCode::kInvalidArgument, "constrained decoding: the model has no tokenizer vocabulary");
  auto v = std::make_shared<ConstraintVocab>();
  v->tokens_.resize(n);
  v->by_first_.resize(256);
  v->structural_by_first_.resize(256);
  for (size_t i = 0; i < n; ++i) {
    const int32_t id = static_cast<int32_t>(i);
    Token& t = v->tokens_[i];
    t.eog = tokenizer.is_eog(id);
    if (t.eog) v->eog_.push_back(id);
    const TokenType type = tokenizer.token_type(id);
    // Special tokens never appear in a beat (E_LEAK); only the EOG ones are ever allowed, and only at the end.
    if (type == TokenType::kControl || type == TokenType::kUnused || type == TokenType::kUnknown || t.eog) continue;
    // User-defined tokens are mostly plain text that the vocabulary adds whole ("\n", "\n\n", runs of spaces: in
    // Gemma's vocabulary the newline itself is one); the visible turn/channel markers among them are not text.
    if (type == TokenType::kUserDefined && looks_like_marker(tokenizer.token_text(id))) continue;
    t.bytes = tokenizer.token_bytes(id);
    if (t.bytes.empty()) continue;
    bool plain = whole_utf8(t.bytes);  // byte-fallback pieces and split characters are always simulated
    for (char c : t.bytes) {
      const auto b = static_cast<uint8_t>(c);
      if (structural(b)) plain = false;
      if ((b & 0xC0) != 0x80) t.cps++;
    }
    t.plain = plain;
    const auto first = static_cast<uint8_t>(t.bytes[0]);
    v->by_first_[first].push_back(id);
    if (plain) v->plain_.push_back(id);
    else v->structural_by_first_[first].push_back(id);
  }
  if (v->eog_.empty()) return make_error(ErrorCode::kInvalidArgument, "constrained decoding: the tokenizer has no end-of-generation token");
  return std::shared_ptr<const ConstraintVocab>(std::move(v));
}

ProtocolConstraint::ProtocolConstraint(ProtocolRecognizer recognizer, std::shared_ptr<const ConstraintVocab> vocab)
    : rec_(std::move(recognizer)), vocab_(std::move(vocab)) {
  reset();
}

Result<std::shared_ptr<ProtocolConstraint>> ProtocolConstraint::create(const Tokenizer& tokenizer,
                                                                      const protocol::Manifest& manifest,
                                                                      const std::vector<std::string>& locked_cast) {
  FABULA_ASSIGN(auto rec, ProtocolRecognizer::create(manifest, locked_cast));
  FABULA_ASSIGN(auto vocab, ConstraintVocab::build(tokenizer));
  return std::make_shared<ProtocolConstraint>(std::move(rec), std::move(vocab));
}

void ProtocolConstraint::reset() {
  rec_.reset();
  history_.assign(1, rec_.state());
  allowed_valid_ = false;
}

void ProtocolConstraint::compute_allowed() {
  const auto& toks = vocab_->tokens_;
  allowed_.assign(toks.size(), 0);
  const ProtocolState s = rec_.state();
  auto simulate = [&](int32_t id) {
    ProtocolState copy = s;
    if (rec_.feed(copy, toks[static_cast<size_t>(id)].bytes)) allowed_[static_cast<size_t>(id)] = 1;
  };
  if (rec_.complete(s))
    for (int32_t id : vocab_->eog_) allowed_[static_cast<size_t>(id)] = 1;
  bool first_ok[256];
  for (int b = 0; b < 256; ++b) {
    ProtocolState copy = s;
    first_ok[b] = rec_.feed_byte(copy, static_cast<uint8_t>(b));
  }
  int32_t budget = 0;
  if (rec_.free_text(s, &budget)) {
    for (int32_t id : vocab_->plain_) {
      if (toks[static_cast<size_t>(id)].cps <= budget) allowed_[static_cast<size_t>(id)] = 1;
      else if (first_ok[static_cast<uint8_t>(toks[static_cast<size_t>(id)].bytes[0])]) simulate(id);
    }
    for (int b = 0; b < 256; ++b)
      if (first_ok[b])
        for (int32_t id : vocab_->structural_by_first_[static_cast<size_t>(b)]) simulate(id);
  } else {
    for (int b = 0; b < 256; ++b)
      if (first_ok[b])
        for (int32_t id : vocab_->by_first_[static_cast<size_t>(b)]) simulate(id);
  }
  allowed_valid_ = true;
}

const std::vector<uint8_t>& ProtocolConstraint::allowed() {
  if (!allowed_valid_) compute_allowed();
  return allowed_;
}

void ProtocolConstraint::apply(std::span<float> logits) {
  const auto& ok = allowed();
  const float neg = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < logits.size(); ++i)
    if (i >= ok.size() || !ok[i]) logits[i] = neg;
}

Status ProtocolConstraint::accept(int32_t id) {
  const auto& ok = allowed();
  if (id < 0 || static_cast<size_t>(id) >= ok.size() || !ok[static_cast<size_t>(id)])
    return make_error(ErrorCode::kInvalidArgument, "constrained decoding: token {} is not allowed here", id);
  const auto& t = vocab_->tokens_[static_cast<size_t>(id)];
  if (!t.eog && !rec_.feed(t.bytes))
    return make_error(ErrorCode::kInternal, "constrained decoding: token {} was allowed but does not feed", id);
  history_.push_back(rec_.state());
  allowed_valid_ = false;
  return ok_status();
}

void ProtocolConstraint::rewind(size_t n_accepted) {
  if (n_accepted + 1 < history_.size()) history_.resize(n_accepted + 1);
  rec_.set_state(history_.back());
  allowed_valid_ = false;
}

}  // namespace fabula

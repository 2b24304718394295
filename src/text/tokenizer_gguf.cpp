// Tokenizer <-> GGUF metadata: loads tokenizer.ggml.* (llama.cpp gemma4 layout) and writes it from a tokenizer.json.
#include <algorithm>

#include "base/log.h"
#include "text/tokenizer_impl.h"

namespace fabula {

namespace {

const std::vector<std::string>* string_array(const GgufValue* v) {
  return v ? std::get_if<std::vector<std::string>>(&v->data) : nullptr;
}

int32_t optional_id(const GgufFile& g, const char* key, size_t n_tokens) {
  const GgufValue* v = g.find(key);
  if (!v) return -1;
  const auto id = v->as_i64();
  return id && *id >= 0 && uint64_t(*id) < n_tokens ? int32_t(*id) : -1;
}

}  // namespace

Result<Tokenizer> Tokenizer::from_gguf(const GgufFile& g) {
  const std::string& src = g.file().path();
  FABULA_ASSIGN(std::string model, g.get_string("tokenizer.ggml.model"));
  if (model != "gemma4") {
    return make_error(ErrorCode::kUnsupported, "{}: tokenizer.ggml.model is '{}', only 'gemma4' (BPE) is supported",
                      src, model);
  }
  const auto* tokens = string_array(g.find("tokenizer.ggml.tokens"));
  if (!tokens || tokens->empty()) {
    return make_error(ErrorCode::kNotFound, "{}: tokenizer.ggml.tokens missing or not a string array", src);
  }
  const auto* merges = string_array(g.find("tokenizer.ggml.merges"));
  if (!merges) return make_error(ErrorCode::kNotFound, "{}: tokenizer.ggml.merges missing or not a string array", src);
  const size_t n = tokens->size();

  auto m = std::make_shared<Tokenizer::Impl>();
  m->info.source = src;
  m->info.model = model;
  m->info.newline_presplit = true;
  m->tokens = *tokens;
  m->types.assign(n, TokenType::kNormal);
  m->scores.assign(n, 0.0f);
  if (auto types = g.get_i64_array("tokenizer.ggml.token_type"); types.ok()) {
    if (types->size() != n) {
      return make_error(ErrorCode::kCorrupt, "{}: tokenizer.ggml.token_type has {} entries, tokens has {}", src,
                        types->size(), n);
    }
    for (size_t i = 0; i < n; ++i) {
      const int64_t t = (*types)[i];
      m->types[i] = t >= 0 && t <= 6 ? TokenType(t) : TokenType::kUndefined;
    }
  } else {
    for (size_t i = 0; i < n; ++i) {
      if (parse_byte_token(m->tokens[i]) >= 0) m->types[i] = TokenType::kByte;
    }
  }
  if (const GgufValue* sv = g.find("tokenizer.ggml.scores")) {
    if (const auto* d = std::get_if<std::vector<double>>(&sv->data); d && d->size() == n) {
      for (size_t i = 0; i < n; ++i) m->scores[i] = float((*d)[i]);
    }
  }
  // llama.cpp's gemma4 pre-tokenizer: ' ' -> '▁', split into newline / non-newline runs, newline runs that are
  // tokens emitted whole, raw UTF-8 BPE with byte fallback. Control, user-defined and unknown tokens split out.
  m->replace_space = true;
  m->pre_split = PreSplit::kNewlineRuns;
  m->newline_run_whole = true;
  m->byte_fallback = true;
  m->fuse_unk = true;
  std::vector<int32_t> split_out;
  for (size_t i = 0; i < n; ++i) {
    const TokenType t = m->types[i];
    if (t == TokenType::kControl || t == TokenType::kUserDefined || t == TokenType::kUnknown) {
      split_out.push_back(int32_t(i));
    }
  }
  m->finish(split_out);

  m->bos = optional_id(g, "tokenizer.ggml.bos_token_id", n);
  m->eos = optional_id(g, "tokenizer.ggml.eos_token_id", n);
  m->unk = optional_id(g, "tokenizer.ggml.unknown_token_id", n);
  m->pad = optional_id(g, "tokenizer.ggml.padding_token_id", n);
  m->mask = optional_id(g, "tokenizer.ggml.mask_token_id", n);
  m->add_bos = true;
  if (const GgufValue* v = g.find("tokenizer.ggml.add_bos_token")) m->add_bos = v->as_bool().value_or(true);
  if (const GgufValue* v = g.find("tokenizer.chat_template"); v && v->as_string()) m->chat_template = *v->as_string();
  m->build_eog();

  // "a b": split at the first space after index 0 (llama.cpp), so a part may itself start with a space.
  m->merges.reserve(merges->size());
  size_t skipped = 0;
  std::string joined;
  for (size_t i = 0; i < merges->size(); ++i) {
    const std::string& w = (*merges)[i];
    const size_t sp = w.find(' ', 1);
    if (sp == std::string::npos) {
      return make_error(ErrorCode::kCorrupt, "{}: tokenizer.ggml.merges[{}] = '{}' has no space", src, i, w);
    }
    const std::string_view a = std::string_view(w).substr(0, sp), b = std::string_view(w).substr(sp + 1);
    joined.assign(a).append(b);
    const int32_t ia = m->lookup(a), ib = m->lookup(b), im = m->lookup(joined);
    if (ia < 0 || ib < 0 || im < 0) {
      ++skipped;
      continue;
    }
    m->merges.insert(ia, ib, int32_t(i), im);
  }
  if (skipped) FABULA_LOG_WARN("{}: {} merges name tokens not in the vocab; ignored", src, skipped);
  m->info.n_merges = m->merges.size();
  return tokenizer_from_impl(std::move(m));
}

Result<GgufMetadata> tokenizer_gguf_metadata(const std::string& tokenizer_json_path,
                                             const std::string& tokenizer_config_path) {
  const std::string& path = tokenizer_json_path;
  FABULA_ASSIGN(HfTokenizerJson tj, parse_tokenizer_json(path));
  FABULA_ASSIGN(HfTokenizerConfig cfg, read_tokenizer_config(path, tokenizer_config_path));
  const nlohmann::json model = tj.rest.value("model", nlohmann::json::object());
  if (model.value("type", "") != "BPE" || !model.value("byte_fallback", false)) {
    return make_error(ErrorCode::kUnsupported, "{}: expected a byte-fallback BPE model (Gemma layout)", path);
  }
  int64_t n_base = 0;
  for (const auto& [t, id] : tj.vocab) n_base = std::max(n_base, id + 1);
  int64_t n = n_base;
  for (const auto& a : tj.added) n = std::max(n, a.id + 1);
  std::vector<std::string> tokens(static_cast<size_t>(n));
  std::vector<bool> present(size_t(n), false);
  for (auto& [t, id] : tj.vocab) {
    if (id < 0) return make_error(ErrorCode::kCorrupt, "{}: model.vocab['{}'] has negative id", path, t);
    tokens[size_t(id)] = t;
    present[size_t(id)] = true;
  }
  // LlamaHfVocab: BYTE for <0xNN>, CONTROL for special tokens, USER_DEFINED for added tokens beyond the base
  // vocab, NORMAL otherwise; then Gemma4Model.set_vocab forces the chat-parser tokens to USER_DEFINED.
  std::vector<int64_t> types(static_cast<size_t>(n), static_cast<int64_t>(TokenType::kNormal));
  std::vector<bool> special(size_t(n), false);
  for (const auto& a : tj.added) {
    if (a.id < 0) return make_error(ErrorCode::kCorrupt, "{}: added token '{}' has a negative id", path, a.content);
    tokens[size_t(a.id)] = a.content;
    present[size_t(a.id)] = true;
    if (a.special) special[size_t(a.id)] = true;
    if (a.id >= n_base && !a.special) types[size_t(a.id)] = int64_t(TokenType::kUserDefined);
  }
  std::unordered_map<std::string_view, int64_t> ids;
  ids.reserve(size_t(n) * 2);
  for (int64_t i = 0; i < n; ++i) {
    if (present[size_t(i)]) ids.emplace(tokens[size_t(i)], i);
  }
  auto id_of = [&](const std::string& name, const char* fallback) -> int64_t {
    auto it = ids.find(name.empty() ? std::string_view(fallback) : std::string_view(name));
    return it == ids.end() ? -1 : it->second;
  };
  for (const std::string& s : cfg.extra_special) {
    if (auto it = ids.find(s); it != ids.end()) special[size_t(it->second)] = true;
  }
  for (int64_t i = 0; i < n; ++i) {
    if (!present[size_t(i)]) {
      tokens[size_t(i)] = "[PAD" + std::to_string(i) + "]";  // what llama.cpp's converter writes for a hole
      types[size_t(i)] = int64_t(TokenType::kUnused);
      continue;
    }
    const std::string& t = tokens[size_t(i)];
    if (parse_byte_token(t) >= 0) {
      types[size_t(i)] = int64_t(TokenType::kByte);
    } else if (is_gemma4_visible_token(t)) {
      types[size_t(i)] = int64_t(TokenType::kUserDefined);
    } else if (special[size_t(i)]) {
      types[size_t(i)] = int64_t(TokenType::kControl);
    }
  }
  std::vector<std::string> merges;
  merges.reserve(tj.merges.size());
  for (size_t i = 0; i < tj.merges.size(); ++i) {
    const auto& [a, b] = tj.merges[i];
    if (a.empty() || b.find(' ') != std::string::npos || a.find(' ', 1) != std::string::npos) {
      return make_error(ErrorCode::kUnsupported, "{}: merges[{}] ('{}' '{}') cannot be written as \"a b\"", path, i,
                        a, b);
    }
    merges.push_back(a + " " + b);
  }

  GgufMetadata md;
  md.emplace_back("tokenizer.ggml.model", GgufValue::string("gemma4"));
  md.emplace_back("tokenizer.ggml.tokens", GgufValue::array(std::move(tokens)));
  md.emplace_back("tokenizer.ggml.scores",
                  GgufValue::array(GgufValueType::kF32, std::vector<double>(size_t(n), -1000.0)));
  md.emplace_back("tokenizer.ggml.token_type", GgufValue::array(GgufValueType::kI32, std::move(types)));
  md.emplace_back("tokenizer.ggml.merges", GgufValue::array(std::move(merges)));
  const std::pair<const char*, int64_t> id_keys[] = {
      {"tokenizer.ggml.bos_token_id", id_of(cfg.bos, "<bos>")},
      {"tokenizer.ggml.eos_token_id", id_of(cfg.eos, "<eos>")},
      {"tokenizer.ggml.unknown_token_id", id_of(cfg.unk.empty() ? model.value("unk_token", "") : cfg.unk, "<unk>")},
      {"tokenizer.ggml.padding_token_id", id_of(cfg.pad, "<pad>")},
      {"tokenizer.ggml.mask_token_id", id_of(cfg.mask, "<mask>")},
  };
  for (const auto& [key, id] : id_keys) {
    if (id >= 0) md.emplace_back(key, GgufValue::u32(uint32_t(id)));
  }
  md.emplace_back("tokenizer.ggml.add_bos_token", GgufValue::boolean(cfg.has_add_bos ? cfg.add_bos : true));
  if (cfg.has_add_eos) md.emplace_back("tokenizer.ggml.add_eos_token", GgufValue::boolean(cfg.add_eos));
  md.emplace_back("tokenizer.ggml.add_space_prefix", GgufValue::boolean(false));
  if (!cfg.chat_template.empty()) md.emplace_back("tokenizer.chat_template", GgufValue::string(cfg.chat_template));
  return md;
}

}  // namespace fabula

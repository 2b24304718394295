// Loads an HF tokenizer.json (SAX: ~0.3 s for Gemma's 33 MB) and tokenizer_config.json into a Tokenizer.
#include <algorithm>
#include <filesystem>

#include "base/file.h"
#include "base/json_view.h"
#include "base/log.h"
#include "text/tokenizer_impl.h"

namespace fabula {

namespace {

using json = nlohmann::json;

// SAX handler: a DOM builder for everything except model.vocab and model.merges, which are streamed into vectors.
class TokenizerSax : public nlohmann::json_sax<json> {
 public:
  explicit TokenizerSax(HfTokenizerJson& out) : out_(out) {}

  bool null() override { return value(json(nullptr)); }
  bool boolean(bool v) override { return value(json(v)); }
  bool number_integer(number_integer_t v) override { return number(int64_t(v), json(v)); }
  bool number_unsigned(number_unsigned_t v) override { return number(int64_t(v), json(v)); }
  bool number_float(number_float_t v, const string_t&) override { return value(json(v)); }
  bool binary(binary_t&) override { return false; }

  bool string(string_t& v) override {
    if (mode_ == Mode::kMerges) {  // "a b" form
      const size_t sp = v.find(' ', 1);
      if (sp == std::string::npos) return fail("merge without a space: " + v);
      out_.merges.emplace_back(v.substr(0, sp), v.substr(sp + 1));
      return true;
    }
    if (mode_ == Mode::kMergePair) {
      pair_.push_back(std::move(v));
      return true;
    }
    if (mode_ == Mode::kVocab) return fail("vocab value for '" + key_ + "' is a string, expected an id");
    return value(json(v));
  }

  bool key(string_t& k) override {
    key_ = std::move(k);  // the lexer clears its buffer before the next token
    return true;
  }

  bool start_object(std::size_t) override {
    if (mode_ != Mode::kDom) return fail("unexpected object inside model.vocab/merges");
    if (depth_ == 2 && key_ == "vocab" && in_model()) {
      mode_ = Mode::kVocab;
      out_.vocab.reserve(300000);
      return true;
    }
    return open(json::object());
  }
  bool end_object() override {
    if (mode_ == Mode::kVocab) {
      mode_ = Mode::kDom;
      return true;
    }
    return close();
  }
  bool start_array(std::size_t) override {
    if (mode_ == Mode::kMerges) {
      mode_ = Mode::kMergePair;
      pair_.clear();
      return true;
    }
    if (mode_ != Mode::kDom) return fail("unexpected array inside model.vocab/merges");
    if (depth_ == 2 && key_ == "merges" && in_model()) {
      mode_ = Mode::kMerges;
      out_.merges.reserve(600000);
      return true;
    }
    return open(json::array());
  }
  bool end_array() override {
    if (mode_ == Mode::kMergePair) {
      if (pair_.size() != 2) return fail("merge #" + std::to_string(out_.merges.size()) + " is not a pair");
      out_.merges.emplace_back(std::move(pair_[0]), std::move(pair_[1]));
      mode_ = Mode::kMerges;
      return true;
    }
    if (mode_ == Mode::kMerges) {
      mode_ = Mode::kDom;
      return true;
    }
    return close();
  }
  bool parse_error(std::size_t pos, const std::string&, const nlohmann::detail::exception& e) override {
    if (error_.empty()) error_ = "byte " + std::to_string(pos) + ": " + e.what();
    return false;
  }

  const std::string& error() const { return error_; }

 private:
  enum class Mode { kDom, kVocab, kMerges, kMergePair };

  bool in_model() const { return stack_.size() == 2 && model_key_ == "model"; }
  bool fail(std::string msg) {
    if (error_.empty()) error_ = std::move(msg);
    return false;
  }
  bool number(int64_t v, json j) {
    if (mode_ == Mode::kVocab) {
      out_.vocab.emplace_back(std::move(key_), v);
      return true;
    }
    if (mode_ != Mode::kDom) return fail("number inside model.merges");
    return value(std::move(j));
  }
  json* place(json v) {
    if (stack_.empty()) {
      out_.rest = std::move(v);
      return &out_.rest;
    }
    json& parent = *stack_.back();
    if (parent.is_array()) {
      parent.push_back(std::move(v));
      return &parent.back();
    }
    json& slot = parent[key_];
    slot = std::move(v);
    return &slot;
  }
  bool value(json v) {
    if (mode_ != Mode::kDom) return fail("unexpected value inside model.vocab/merges");
    place(std::move(v));
    return true;
  }
  bool open(json v) {
    // Deep nesting would overflow the stack of the recursive writers; no tokenizer.json needs it.
    if (depth_ >= 128) return fail("JSON nested deeper than 128 levels");
    if (depth_ == 1) model_key_ = key_;
    stack_.push_back(place(std::move(v)));
    ++depth_;
    return true;
  }
  bool close() {
    stack_.pop_back();
    --depth_;
    return true;
  }

  HfTokenizerJson& out_;
  std::vector<json*> stack_;
  int depth_ = 0;
  Mode mode_ = Mode::kDom;
  std::string key_;
  std::string model_key_;
  std::vector<std::string> pair_;
  std::string error_;
};

// A special-token field of tokenizer_config.json: "<bos>" or {"content": "<bos>", ...}; null or absent: "".
Result<std::string> token_name(const JsonView& j) {
  if (j.is_string()) return j.string();
  if (j.is_object()) return j.string_or("content", "");
  return j.type_error("a token (a string or an object with a string \"content\")");
}

Result<std::string> token_field(const JsonView& config, std::string_view key) {
  if (auto f = config.find(key)) return token_name(*f);
  return std::string();
}

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";

Status apply_normalizer_one(const JsonView& n, Tokenizer::Impl& m) {
  FABULA_ASSIGN(std::string type, n.string("type"));
  if (type == "Replace") {
    FABULA_ASSIGN(JsonView pattern, n.field("pattern"));
    FABULA_ASSIGN(std::string literal, pattern.string_or("String", ""));
    FABULA_ASSIGN(std::string content, n.string_or("content", ""));
    if (literal == " " && content == kSpaceMark) {
      m.replace_space = true;
      return ok_status();
    }
  } else if (type == "Prepend") {
    FABULA_ASSIGN(m.prepend, n.string_or("prepend", ""));
    return ok_status();
  }
  return n.error(ErrorCode::kUnsupported, "normalizer {} is not supported (expected Replace(' ' -> U+2581))",
                 dump_json(n.raw()));
}

Status apply_normalizer(const std::optional<JsonView>& n, Tokenizer::Impl& m) {
  m.replace_space = false;
  if (!n) return ok_status();
  FABULA_ASSIGN(std::string type, n->string("type"));
  if (type == "Sequence") {
    FABULA_ASSIGN(JsonView list, n->field("normalizers"));
    FABULA_ASSIGN(auto items, list.elements());
    for (const JsonView& sub : items) FABULA_TRY(apply_normalizer_one(sub, m));
    return ok_status();
  }
  return apply_normalizer_one(*n, m);
}

Status apply_pre_tokenizer(const std::optional<JsonView>& p, Tokenizer::Impl& m) {
  m.pre_split = PreSplit::kNone;
  if (!p) return ok_status();
  FABULA_ASSIGN(std::string type, p->string("type"));
  if (type == "Sequence") {
    FABULA_ASSIGN(JsonView list, p->field("pretokenizers"));
    FABULA_ASSIGN(auto items, list.elements());
    if (items.size() == 1) return apply_pre_tokenizer(items[0], m);
  }
  FABULA_ASSIGN(bool invert, p->boolean_or("invert", false));
  if (type == "Split" && !invert) {
    FABULA_ASSIGN(JsonView pattern, p->field("pattern"));
    FABULA_ASSIGN(std::string behavior, p->string_or("behavior", ""));
    if (pattern.has("String")) {
      static const std::pair<const char*, SplitBehavior> kBehaviors[] = {
          {"Removed", SplitBehavior::kRemoved},
          {"Isolated", SplitBehavior::kIsolated},
          {"MergedWithPrevious", SplitBehavior::kMergedWithPrevious},
          {"MergedWithNext", SplitBehavior::kMergedWithNext},
          {"Contiguous", SplitBehavior::kContiguous}};
      for (const auto& [name, b] : kBehaviors) {
        if (behavior == name) {
          m.pre_split = PreSplit::kLiteral;
          FABULA_ASSIGN(m.split_literal, pattern.string("String"));
          m.split_behavior = b;
          return ok_status();
        }
      }
    }
    if (pattern.has("Regex") && behavior == "Isolated") {
      // No regex engine: the two patterns Gemma-style tokenizers use are hand-coded.
      FABULA_ASSIGN(const std::string re, pattern.string("Regex"));
      if (re == std::string(kSpaceMark) + "*[^" + std::string(kSpaceMark) + "\n]+|" + std::string(kSpaceMark) +
                    "+|\n+") {
        m.pre_split = PreSplit::kSpaceWordRuns;
        return ok_status();
      }
      if (re == "[^\n]+|[\n]+" || re == "[^\\n]+|[\\n]+") {
        m.pre_split = PreSplit::kNewlineRuns;
        return ok_status();
      }
    }
  }
  return p->error(ErrorCode::kUnsupported,
                  "pre_tokenizer {} is not supported (expected none, a literal Split, or Split regex "
                  "\"\u2581*[^\u2581\\n]+|\u2581+|\\n+\" / \"[^\\n]+|[\\n]+\" isolated)",
                  dump_json(p->raw()));
}

}  // namespace

Result<HfTokenizerJson> parse_tokenizer_json(const std::string& path) {
  FABULA_ASSIGN(std::string text, read_file_text(path));
  HfTokenizerJson out;
  TokenizerSax sax(out);
  const bool ok = json::sax_parse(text, &sax, json::input_format_t::json, /*strict=*/true);
  if (!ok) {
    return make_error(ErrorCode::kParse, "{}: {}", path, sax.error().empty() ? "invalid JSON" : sax.error());
  }
  JsonView root(out.rest, path);
  FABULA_TRY(root.expect_object());
  if (auto added = root.find("added_tokens")) {
    FABULA_ASSIGN(auto items, added->elements());
    for (const JsonView& a : items) {
      HfTokenizerJson::Added token;
      FABULA_ASSIGN(token.id, a.integer("id", 0, (int64_t(1) << 24) - 1));
      FABULA_ASSIGN(token.content, a.string("content"));
      FABULA_ASSIGN(token.special, a.boolean_or("special", false));
      out.added.push_back(std::move(token));
    }
  }
  return out;
}

Result<HfTokenizerConfig> read_tokenizer_config(const std::string& json_path, const std::string& config_path) {
  namespace fs = std::filesystem;
  HfTokenizerConfig cfg;
  const fs::path dir = fs::path(json_path).parent_path();
  std::string path = config_path;
  if (path.empty()) {
    const fs::path guess = dir / "tokenizer_config.json";
    std::error_code ec;
    if (fs::exists(guess, ec)) path = guess.string();
  }
  if (!path.empty()) {
    FABULA_ASSIGN(std::string text, read_file_text(path));
    FABULA_ASSIGN(const json doc, parse_json(text, path));
    JsonView j(doc, path);
    FABULA_TRY(j.expect_object());
    if (auto f = j.find("add_bos_token")) {
      cfg.has_add_bos = true;
      FABULA_ASSIGN(cfg.add_bos, f->boolean());
    }
    if (auto f = j.find("add_eos_token")) {
      cfg.has_add_eos = true;
      FABULA_ASSIGN(cfg.add_eos, f->boolean());
    }
    for (auto [field, dst] : {std::pair{"bos_token", &cfg.bos}, {"eos_token", &cfg.eos}, {"unk_token", &cfg.unk},
                              {"pad_token", &cfg.pad}, {"mask_token", &cfg.mask}}) {
      FABULA_ASSIGN(*dst, token_field(j, field));
    }
    if (auto extra = j.find("additional_special_tokens")) {
      FABULA_ASSIGN(auto items, extra->elements());
      for (const JsonView& t : items) {
        FABULA_ASSIGN(std::string name, token_name(t));
        if (!name.empty()) cfg.extra_special.push_back(std::move(name));
      }
    }
    if (auto ct = j.find("chat_template")) {
      if (ct->is_string()) {
        FABULA_ASSIGN(cfg.chat_template, ct->string());
      } else {  // [{"name": "default", "template": ...}, ...]
        FABULA_ASSIGN(auto items, ct->elements());
        for (const JsonView& e : items) {
          FABULA_ASSIGN(std::string name, e.string("name"));
          if (name == "default") {
            FABULA_ASSIGN(cfg.chat_template, e.string("template"));
          }
        }
      }
    }
  }
  if (cfg.chat_template.empty()) {
    const fs::path jinja = dir / "chat_template.jinja";
    std::error_code ec;
    if (fs::exists(jinja, ec)) {
      FABULA_ASSIGN(cfg.chat_template, read_file_text(jinja.string()));
    }
  }
  return cfg;
}

Result<Tokenizer> Tokenizer::from_tokenizer_json(const std::string& path, const std::string& config_path) {
  FABULA_ASSIGN(HfTokenizerJson tj, parse_tokenizer_json(path));
  FABULA_ASSIGN(HfTokenizerConfig cfg, read_tokenizer_config(path, config_path));
  JsonView root(tj.rest, path);
  FABULA_ASSIGN(JsonView model, root.field("model"));
  FABULA_ASSIGN(std::string model_type, model.string("type"));
  if (model_type != "BPE")
    return model.error(ErrorCode::kUnsupported, "type is '{}', only BPE is supported", model_type);
  if (model.has("continuing_subword_prefix") || model.has("end_of_word_suffix"))
    return model.error(ErrorCode::kUnsupported, "continuing_subword_prefix / end_of_word_suffix are not supported");
  auto m = std::make_shared<Tokenizer::Impl>();
  m->info.source = path;
  m->info.model = "BPE";
  int64_t n = 0;
  for (const auto& [t, id] : tj.vocab) n = std::max(n, id + 1);
  for (const auto& a : tj.added) n = std::max(n, a.id + 1);
  if (n <= 0 || n > (int64_t(1) << 24)) return make_error(ErrorCode::kCorrupt, "{}: vocabulary size {}", path, n);
  m->tokens.assign(size_t(n), std::string());
  m->types.assign(size_t(n), TokenType::kUnused);
  m->scores.assign(size_t(n), 0.0f);
  for (auto& [t, id] : tj.vocab) {
    if (id < 0) return make_error(ErrorCode::kCorrupt, "{}: model.vocab['{}'] has negative id {}", path, t, id);
    m->types[size_t(id)] = parse_byte_token(t) >= 0 ? TokenType::kByte : TokenType::kNormal;
    m->tokens[size_t(id)] = std::move(t);
  }
  std::vector<int32_t> split_out;
  for (const auto& a : tj.added) {
    if (a.id < 0) return make_error(ErrorCode::kCorrupt, "{}: added token '{}' has id {}", path, a.content, a.id);
    m->tokens[size_t(a.id)] = a.content;
    m->types[size_t(a.id)] = a.special && !is_gemma4_visible_token(a.content) ? TokenType::kControl
                                                                               : TokenType::kUserDefined;
    split_out.push_back(int32_t(a.id));
  }
  FABULA_TRY(apply_normalizer(root.find("normalizer"), *m));
  FABULA_TRY(apply_pre_tokenizer(root.find("pre_tokenizer"), *m));
  FABULA_ASSIGN(m->byte_fallback, model.boolean_or("byte_fallback", false));
  FABULA_ASSIGN(m->fuse_unk, model.boolean_or("fuse_unk", false));
  FABULA_ASSIGN(m->ignore_merges, model.boolean_or("ignore_merges", false));
  m->finish(split_out);

  auto id_of = [&](const std::string& name, const char* fallback) -> int32_t {
    const int32_t id = name.empty() ? -1 : m->lookup(name);
    return id >= 0 ? id : m->lookup(fallback);
  };
  FABULA_ASSIGN(std::string unk_name, model.string_or("unk_token", ""));
  m->unk = unk_name.empty() ? -1 : m->lookup(unk_name);
  if (m->unk < 0 && !cfg.unk.empty()) m->unk = m->lookup(cfg.unk);
  m->bos = id_of(cfg.bos, "<bos>");
  m->eos = id_of(cfg.eos, "<eos>");
  m->pad = id_of(cfg.pad, "<pad>");
  m->mask = id_of(cfg.mask, "<mask>");
  // add_bos: the config's word, else whether the post-processor prepends a token.
  std::string post_type;
  if (auto post = root.find("post_processor")) {
    FABULA_ASSIGN(post_type, post->string("type"));
  }
  m->add_bos = cfg.has_add_bos ? cfg.add_bos : post_type == "TemplateProcessing";
  m->chat_template = cfg.chat_template;
  m->build_eog();

  m->merges.reserve(tj.merges.size());
  std::string joined;
  size_t duplicates = 0;
  for (size_t i = 0; i < tj.merges.size(); ++i) {
    const auto& [a, b] = tj.merges[i];
    joined.assign(a).append(b);
    const int32_t ia = m->lookup(a), ib = m->lookup(b), im = m->lookup(joined);
    if (ia < 0 || ib < 0 || im < 0) {
      return make_error(ErrorCode::kCorrupt, "{}: model.merges[{}] ('{}' '{}') names a token not in the vocab", path,
                        i, a, b);
    }
    if (!m->merges.insert(ia, ib, int32_t(i), im)) ++duplicates;
  }
  if (duplicates) FABULA_LOG_WARN("{}: {} duplicate merges ignored (first rank kept)", path, duplicates);
  m->info.n_merges = m->merges.size();
  return tokenizer_from_impl(std::move(m));
}

}  // namespace fabula

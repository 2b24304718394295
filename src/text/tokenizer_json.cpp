// Loads an HF tokenizer.json (SAX: ~0.3 s for Gemma's 33 MB) and tokenizer_config.json into a Tokenizer.
#include <algorithm>
#include <filesystem>

#include "base/file.h"
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

// A special-token field of tokenizer_config.json: "<bos>" or {"content": "<bos>", ...}.
std::string token_name(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string()) return j["content"].get<std::string>();
  return {};
}

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";

Status apply_normalizer_one(const json& n, Tokenizer::Impl& m, const std::string& path) {
  const std::string type = n.value("type", "");
  if (type == "Replace") {
    const json pat = n.value("pattern", json::object());
    if (pat.value("String", "") == " " && n.value("content", "") == kSpaceMark) {
      m.replace_space = true;
      return ok_status();
    }
  } else if (type == "Prepend") {
    m.prepend = n.value("prepend", "");
    return ok_status();
  }
  return make_error(ErrorCode::kUnsupported, "{}: normalizer {} is not supported (expected Replace(' ' -> U+2581))",
                    path, n.dump());
}

Status apply_normalizer(const json& n, Tokenizer::Impl& m, const std::string& path) {
  m.replace_space = false;
  if (n.is_null()) return ok_status();
  if (n.value("type", "") == "Sequence" && n.contains("normalizers") && n["normalizers"].is_array()) {
    for (const json& sub : n["normalizers"]) FABULA_TRY(apply_normalizer_one(sub, m, path));
    return ok_status();
  }
  return apply_normalizer_one(n, m, path);
}

Status apply_pre_tokenizer(const json& p, Tokenizer::Impl& m, const std::string& path) {
  m.pre_split = PreSplit::kNone;
  if (p.is_null()) return ok_status();
  const std::string type = p.value("type", "");
  if (type == "Sequence" && p.contains("pretokenizers") && p["pretokenizers"].is_array() &&
      p["pretokenizers"].size() == 1) {
    return apply_pre_tokenizer(p["pretokenizers"][0], m, path);
  }
  if (type == "Split" && !p.value("invert", false)) {
    const json pat = p.value("pattern", json::object());
    const std::string behavior = p.value("behavior", "");
    if (pat.contains("String") && pat["String"].is_string()) {
      static const std::pair<const char*, SplitBehavior> kBehaviors[] = {
          {"Removed", SplitBehavior::kRemoved},
          {"Isolated", SplitBehavior::kIsolated},
          {"MergedWithPrevious", SplitBehavior::kMergedWithPrevious},
          {"MergedWithNext", SplitBehavior::kMergedWithNext},
          {"Contiguous", SplitBehavior::kContiguous}};
      for (const auto& [name, b] : kBehaviors) {
        if (behavior == name) {
          m.pre_split = PreSplit::kLiteral;
          m.split_literal = pat["String"].get<std::string>();
          m.split_behavior = b;
          return ok_status();
        }
      }
    }
    if (pat.contains("Regex") && pat["Regex"].is_string() && behavior == "Isolated") {
      // No regex engine: the two patterns Gemma-style tokenizers use are hand-coded.
      const std::string re = pat["Regex"].get<std::string>();
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
  return make_error(ErrorCode::kUnsupported,
                    "{}: pre_tokenizer {} is not supported (expected none, a literal Split, or Split regex "
                    "\"\u2581*[^\u2581\\n]+|\u2581+|\\n+\" / \"[^\\n]+|[\\n]+\" isolated)",
                    path, p.dump());
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
  if (!out.rest.is_object()) return make_error(ErrorCode::kParse, "{}: top level is not an object", path);
  const json& added = out.rest.contains("added_tokens") ? out.rest["added_tokens"] : json::array();
  if (!added.is_array()) return make_error(ErrorCode::kParse, "{}: added_tokens is not an array", path);
  for (size_t i = 0; i < added.size(); ++i) {
    const json& a = added[i];
    if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") ||
        !a["content"].is_string()) {
      return make_error(ErrorCode::kParse, "{}: added_tokens[{}] needs an integer id and a string content", path, i);
    }
    out.added.push_back({a["id"].get<int64_t>(), a["content"].get<std::string>(), a.value("special", false)});
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
    const json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return make_error(ErrorCode::kParse, "{}: not a JSON object", path);
    if (j.contains("add_bos_token") && j["add_bos_token"].is_boolean()) {
      cfg.has_add_bos = true;
      cfg.add_bos = j["add_bos_token"].get<bool>();
    }
    if (j.contains("add_eos_token") && j["add_eos_token"].is_boolean()) {
      cfg.has_add_eos = true;
      cfg.add_eos = j["add_eos_token"].get<bool>();
    }
    for (auto [field, dst] : {std::pair{"bos_token", &cfg.bos}, {"eos_token", &cfg.eos}, {"unk_token", &cfg.unk},
                              {"pad_token", &cfg.pad}, {"mask_token", &cfg.mask}}) {
      if (j.contains(field)) *dst = token_name(j[field]);
    }
    if (j.contains("additional_special_tokens") && j["additional_special_tokens"].is_array()) {
      for (const json& t : j["additional_special_tokens"]) {
        std::string name = token_name(t);
        if (!name.empty()) cfg.extra_special.push_back(std::move(name));
      }
    }
    if (j.contains("chat_template")) {
      const json& ct = j["chat_template"];
      if (ct.is_string()) {
        cfg.chat_template = ct.get<std::string>();
      } else if (ct.is_array()) {  // [{"name": "default", "template": ...}, ...]
        for (const json& e : ct) {
          if (e.is_object() && e.value("name", "") == "default" && e.contains("template") &&
              e["template"].is_string()) {
            cfg.chat_template = e["template"].get<std::string>();
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
  const json model = tj.rest.value("model", json::object());
  if (model.value("type", "") != "BPE") {
    return make_error(ErrorCode::kUnsupported, "{}: model.type is '{}', only BPE is supported", path,
                      model.value("type", ""));
  }
  if (!model.value("continuing_subword_prefix", json()).is_null() ||
      !model.value("end_of_word_suffix", json()).is_null()) {
    return make_error(ErrorCode::kUnsupported, "{}: continuing_subword_prefix / end_of_word_suffix are not supported",
                      path);
  }
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
  FABULA_TRY(apply_normalizer(tj.rest.value("normalizer", json()), *m, path));
  FABULA_TRY(apply_pre_tokenizer(tj.rest.value("pre_tokenizer", json()), *m, path));
  m->byte_fallback = model.value("byte_fallback", false);
  m->fuse_unk = model.value("fuse_unk", false);
  m->ignore_merges = model.value("ignore_merges", false);
  m->finish(split_out);

  auto id_of = [&](const std::string& name, const char* fallback) -> int32_t {
    const int32_t id = name.empty() ? -1 : m->lookup(name);
    return id >= 0 ? id : m->lookup(fallback);
  };
  const json unk_name = model.value("unk_token", json());
  m->unk = unk_name.is_string() ? m->lookup(unk_name.get<std::string>()) : -1;
  if (m->unk < 0 && !cfg.unk.empty()) m->unk = m->lookup(cfg.unk);
  m->bos = id_of(cfg.bos, "<bos>");
  m->eos = id_of(cfg.eos, "<eos>");
  m->pad = id_of(cfg.pad, "<pad>");
  m->mask = id_of(cfg.mask, "<mask>");
  // add_bos: the config's word, else whether the post-processor prepends a token.
  const json post = tj.rest.value("post_processor", json());
  m->add_bos = cfg.has_add_bos ? cfg.add_bos : (post.is_object() && post.value("type", "") == "TemplateProcessing");
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

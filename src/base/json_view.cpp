// JsonView: the one place that calls nlohmann's throwing accessors on outside JSON, each after a type check.
#include "base/json_view.h"

#include <cctype>
#include <cmath>

namespace fabula {

using nlohmann::json;

namespace {

bool is_identifier(std::string_view key) {
  if (key.empty() || std::isdigit(static_cast<unsigned char>(key[0]))) return false;
  for (char c : key)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  return true;
}

// "the string \"yes\"", "the number 3", "an array": what was found instead, short enough for a message.
std::string found(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    case json::value_t::boolean: return fmt::format("the boolean {}", v.dump());
    case json::value_t::string: {
      std::string s = dump_json(v);
      if (s.size() > 42) s = s.substr(0, 40) + "\u2026\"";
      return "the string " + s;
    }
    default: return "the number " + v.dump();
  }
}

}  // namespace

Result<json> parse_json(std::string_view text, std::string_view where, int max_depth) {
  bool too_deep = false;
  auto limit = [&](int depth, json::parse_event_t event, json&) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth >= max_depth) {
      too_deep = true;
      return false;  // skip the value instead of building it
    }
    return true;
  };
  json j;
  try {
    j = json::parse(text.begin(), text.end(), limit, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    // e.what() is "[json.exception.parse_error.101] parse error at line 1, column 5: ..."; keep the readable part.
    std::string what = e.what();
    auto at = what.find("] ");
    return make_error(ErrorCode::kParse, "{}: not valid JSON: {}", where,
                      at == std::string::npos ? what : what.substr(at + 2));
  }
  if (too_deep) return make_error(ErrorCode::kParse, "{}: JSON nested deeper than {} levels", where, max_depth);
  return j;
}

std::string dump_json(const json& j, int indent) { return j.dump(indent, ' ', false, json::error_handler_t::replace); }

std::string JsonView::describe() const { return path_.empty() ? where_ : where_ + ": " + path_; }

Error JsonView::type_error(std::string_view expected) const {
  return error(ErrorCode::kParse, "expected {}, got {}", expected, found(*value_));
}

JsonView JsonView::child(const json& value, std::string_view key) const {
  std::string path = path_;
  if (is_identifier(key)) {
    if (!path.empty()) path += '.';
    path += key;
  } else {
    path += '[';
    path += dump_json(std::string(key));
    path += ']';
  }
  return JsonView(value, where_, std::move(path));
}

JsonView JsonView::child(const json& value, size_t index) const {
  return JsonView(value, where_, fmt::format("{}[{}]", path_, index));
}

bool JsonView::has(std::string_view key) const { return find(key).has_value(); }

std::optional<JsonView> JsonView::find(std::string_view key) const {
  if (!value_->is_object()) return std::nullopt;
  auto it = value_->find(key);
  if (it == value_->end() || it->is_null()) return std::nullopt;
  return child(*it, key);
}

Status JsonView::expect_object() const {
  if (!value_->is_object()) return type_error("an object");
  return ok_status();
}

Result<JsonView> JsonView::field(std::string_view key) const {
  FABULA_TRY(expect_object());
  if (auto f = find(key)) return *f;
  return error(ErrorCode::kParse, "missing field \"{}\"", key);
}

Result<std::vector<JsonView>> JsonView::elements() const {
  if (!value_->is_array()) return type_error("an array");
  std::vector<JsonView> out;
  out.reserve(value_->size());
  size_t i = 0;
  for (const json& v : *value_) out.push_back(child(v, i++));
  return out;
}

Result<std::vector<std::pair<std::string, JsonView>>> JsonView::members() const {
  FABULA_TRY(expect_object());
  std::vector<std::pair<std::string, JsonView>> out;
  out.reserve(value_->size());
  for (auto it = value_->begin(); it != value_->end(); ++it) out.emplace_back(it.key(), child(it.value(), it.key()));
  return out;
}

Status JsonView::only_fields(std::initializer_list<std::string_view> known) const {
  FABULA_TRY(expect_object());
  for (auto it = value_->begin(); it != value_->end(); ++it) {
    bool ok = false;
    for (auto k : known) ok |= it.key() == k;
    if (ok) continue;
    std::string list;
    for (auto k : known) list += fmt::format("{}\"{}\"", list.empty() ? "" : ", ", k);
    return error(ErrorCode::kParse, "unknown field \"{}\" (known: {})", it.key(), list);
  }
  return ok_status();
}

Result<std::string> JsonView::string() const {
  if (!value_->is_string()) return type_error("a string");
  return value_->get_ref<const std::string&>();
}

Result<bool> JsonView::boolean() const {
  if (!value_->is_boolean()) return type_error("a boolean (true or false)");
  return value_->get<bool>();
}

Result<int64_t> JsonView::integer(int64_t lo, int64_t hi) const {
  int64_t v = 0;
  if (value_->is_number_unsigned()) {
    uint64_t u = value_->get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return error(ErrorCode::kParse, "{} is too large", u);
    v = static_cast<int64_t>(u);
  } else if (value_->is_number_integer()) {
    v = value_->get<int64_t>();
  } else if (value_->is_number_float()) {
    double d = value_->get<double>();
    if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) >= 9.0e15) return type_error("an integer");
    v = static_cast<int64_t>(d);
  } else {
    return type_error("an integer");
  }
  if (v < lo || v > hi) return error(ErrorCode::kInvalidArgument, "{} is outside [{}, {}]", v, lo, hi);
  return v;
}

Result<uint64_t> JsonView::unsigned_integer() const {
  if (value_->is_number_unsigned()) return value_->get<uint64_t>();
  FABULA_ASSIGN(int64_t v, integer(0));
  return static_cast<uint64_t>(v);
}

Result<double> JsonView::number() const {
  if (!value_->is_number()) return type_error("a number");
  double d = value_->get<double>();
  if (!std::isfinite(d)) return error(ErrorCode::kParse, "not a finite number");
  return d;
}

Result<std::vector<std::string>> JsonView::strings() const {
  FABULA_ASSIGN(auto items, elements());
  std::vector<std::string> out;
  out.reserve(items.size());
  for (const auto& item : items) {
    FABULA_ASSIGN(std::string s, item.string());
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::string> JsonView::string(std::string_view key) const {
  FABULA_ASSIGN(JsonView f, field(key));
  return f.string();
}

Result<std::string> JsonView::string_or(std::string_view key, std::string fallback) const {
  if (auto f = find(key)) return f->string();
  return fallback;
}

Result<bool> JsonView::boolean_or(std::string_view key, bool fallback) const {
  if (auto f = find(key)) return f->boolean();
  return fallback;
}

Result<int64_t> JsonView::integer(std::string_view key, int64_t lo, int64_t hi) const {
  FABULA_ASSIGN(JsonView f, field(key));
  return f.integer(lo, hi);
}

Result<int64_t> JsonView::integer_or(std::string_view key, int64_t fallback, int64_t lo, int64_t hi) const {
  if (auto f = find(key)) return f->integer(lo, hi);
  return fallback;
}

Result<uint64_t> JsonView::unsigned_or(std::string_view key, uint64_t fallback) const {
  if (auto f = find(key)) return f->unsigned_integer();
  return fallback;
}

Result<double> JsonView::number_or(std::string_view key, double fallback) const {
  if (auto f = find(key)) return f->number();
  return fallback;
}

Result<std::vector<std::string>> JsonView::strings(std::string_view key) const {
  FABULA_ASSIGN(JsonView f, field(key));
  return f.strings();
}

Result<std::vector<std::string>> JsonView::strings_or_empty(std::string_view key) const {
  if (auto f = find(key)) return f->strings();
  return std::vector<std::string>();
}

}  // namespace fabula

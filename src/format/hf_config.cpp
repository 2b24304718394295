// HfConfig: config.json parsed by parse_json, walked by dotted key paths, each value read by JsonView.
#include "format/hf_config.h"

#include "base/file.h"

namespace fabula {

using Json = nlohmann::json;

namespace {

// "cfg.json: key 'a' is string ("x"), expected an integer".
Error wrong_type(std::string_view config, std::string_view key, const JsonView& v, std::string_view expected) {
  return make_error(ErrorCode::kParse, "{}: key '{}' is {} ({}), expected {}", config, key, v.raw().type_name(),
                    dump_json(v.raw()).substr(0, 80), expected);
}

// JsonView's read of `v`, or on an error this reader's message naming the key.
template <typename T>
Result<T> typed(Result<T> read, std::string_view config, std::string_view key, const JsonView& v,
                std::string_view expected) {
  if (!read.ok()) return wrong_type(config, key, v, expected);
  return read;
}

// An array read element by element with `read`, an element's error naming "key[i]".
template <typename T, typename Read>
Result<std::vector<T>> typed_array(std::string_view config, std::string_view key, const JsonView& v,
                                   std::string_view expected, std::string_view expected_element, Read read) {
  auto items = v.elements();
  if (!items.ok()) return wrong_type(config, key, v, expected);
  std::vector<T> out;
  out.reserve(items->size());
  for (size_t i = 0; i < items->size(); ++i) {
    const JsonView& item = (*items)[i];
    FABULA_ASSIGN(T x, typed(read(item), config, fmt::format("{}[{}]", key, i), item, expected_element));
    out.push_back(std::move(x));
  }
  return out;
}

}  // namespace

Result<HfConfig> HfConfig::load(const std::string& path) {
  FABULA_ASSIGN(std::string text, read_file_text(path));
  return parse(text, path);
}

Result<HfConfig> HfConfig::parse(std::string_view text, std::string name) {
  FABULA_ASSIGN(Json parsed, parse_json(text, name));
  if (!parsed.is_object()) return make_error(ErrorCode::kParse, "{}: top level must be a JSON object", name);
  HfConfig out;
  out.name_ = std::move(name);
  out.json_ = std::move(parsed);
  return out;
}

const Json* HfConfig::lookup(std::string_view key) const {
  const Json* node = &json_;
  std::string_view rest = key;
  while (true) {
    if (!node->is_object()) return nullptr;
    auto whole = node->find(std::string(rest));
    if (whole != node->end()) return &*whole;
    size_t dot = rest.find('.');
    if (dot == std::string_view::npos) return nullptr;
    auto it = node->find(std::string(rest.substr(0, dot)));
    if (it == node->end()) return nullptr;
    node = &*it;
    rest = rest.substr(dot + 1);
  }
}

bool HfConfig::has(std::string_view key) const {
  const Json* v = lookup(key);
  return v != nullptr && !v->is_null();
}

Result<JsonView> HfConfig::require(std::string_view key) const {
  const Json* v = lookup(key);
  if (v == nullptr) return make_error(ErrorCode::kNotFound, "{}: missing key '{}'", name_, key);
  return JsonView(*v, name_, std::string(key));
}

Result<int64_t> HfConfig::get_int(std::string_view key) const {
  FABULA_ASSIGN(const JsonView v, require(key));
  return typed(v.integer(), name_, key, v, "an integer");
}

Result<double> HfConfig::get_double(std::string_view key) const {
  FABULA_ASSIGN(const JsonView v, require(key));
  return typed(v.number(), name_, key, v, "a number");
}

Result<bool> HfConfig::get_bool(std::string_view key) const {
  FABULA_ASSIGN(const JsonView v, require(key));
  return typed(v.boolean(), name_, key, v, "true or false");
}

Result<std::string> HfConfig::get_string(std::string_view key) const {
  FABULA_ASSIGN(const JsonView v, require(key));
  return typed(v.string(), name_, key, v, "a string");
}

Result<std::vector<int64_t>> HfConfig::get_int_array(std::string_view key) const {
  FABULA_ASSIGN(const JsonView v, require(key));
  return typed_array<int64_t>(name_, key, v, "an array of integers", "an integer",
                              [](const JsonView& item) { return item.integer(); });
}

Result<std::vector<std::string>> HfConfig::get_string_array(std::string_view key) const {
  FABULA_ASSIGN(const JsonView v, require(key));
  return typed_array<std::string>(name_, key, v, "an array of strings", "a string",
                                  [](const JsonView& item) { return item.string(); });
}

Result<HfConfig> HfConfig::get_object(std::string_view key) const {
  FABULA_ASSIGN(const JsonView v, require(key));
  if (!v.is_object()) return wrong_type(name_, key, v, "an object");
  HfConfig out;
  out.name_ = fmt::format("{}: {}", name_, key);
  out.json_ = v.raw();
  return out;
}

std::vector<std::string> HfConfig::keys() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : json_.items()) out.push_back(k);
  return out;
}

Result<int64_t> HfConfig::get_int_or(std::string_view key, int64_t fallback) const {
  return has(key) ? get_int(key) : Result<int64_t>(fallback);
}
Result<double> HfConfig::get_double_or(std::string_view key, double fallback) const {
  return has(key) ? get_double(key) : Result<double>(fallback);
}
Result<bool> HfConfig::get_bool_or(std::string_view key, bool fallback) const {
  return has(key) ? get_bool(key) : Result<bool>(fallback);
}
Result<std::string> HfConfig::get_string_or(std::string_view key, std::string fallback) const {
  return has(key) ? get_string(key) : Result<std::string>(std::move(fallback));
}

}  // namespace fabula

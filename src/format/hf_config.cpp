// HfConfig: config.json loaded with nlohmann (no exceptions), walked by dotted key paths.
#include "format/hf_config.h"

#include <cmath>

#include "base/file.h"

namespace fabula {

using Json = nlohmann::ordered_json;

Result<HfConfig> HfConfig::load(const std::string& path) {
  FABULA_ASSIGN(std::string text, read_file_text(path));
  return parse(text, path);
}

Result<HfConfig> HfConfig::parse(std::string_view text, std::string name) {
  HfConfig out;
  out.name_ = std::move(name);
  // Deep nesting would overflow the stack of the recursive writers and comparisons; no config needs it.
  bool too_deep = false;
  auto limit = [&](int depth, Json::parse_event_t event, Json&) {
    bool opens = event == Json::parse_event_t::object_start || event == Json::parse_event_t::array_start;
    too_deep |= opens && depth >= 128;
    return !(opens && depth >= 128);
  };
  out.json_ = Json::parse(text, limit, /*allow_exceptions=*/false);
  if (out.json_.is_discarded()) return make_error(ErrorCode::kParse, "{}: not valid JSON", out.name_);
  if (too_deep) return make_error(ErrorCode::kParse, "{}: JSON nested deeper than 128 levels", out.name_);
  if (!out.json_.is_object()) return make_error(ErrorCode::kParse, "{}: top level must be a JSON object", out.name_);
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

Result<const Json*> HfConfig::require(std::string_view key) const {
  const Json* v = lookup(key);
  if (v == nullptr) return make_error(ErrorCode::kNotFound, "{}: missing key '{}'", name_, key);
  return v;
}

Error HfConfig::wrong_type(std::string_view key, const Json& v, std::string_view expected) const {
  return make_error(ErrorCode::kParse, "{}: key '{}' is {} ({}), expected {}", name_, key, v.type_name(),
                    v.dump(-1, ' ', false, Json::error_handler_t::replace).substr(0, 80), expected);
}

namespace {

bool to_int(const Json& v, int64_t* out) {
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) return false;
    *out = v.get<int64_t>();
    return true;
  }
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) {
      *out = static_cast<int64_t>(d);
      return true;
    }
  }
  return false;
}

}  // namespace

Result<int64_t> HfConfig::get_int(std::string_view key) const {
  FABULA_ASSIGN(const Json* v, require(key));
  int64_t out;
  if (!to_int(*v, &out)) return wrong_type(key, *v, "an integer");
  return out;
}

Result<double> HfConfig::get_double(std::string_view key) const {
  FABULA_ASSIGN(const Json* v, require(key));
  if (!v->is_number()) return wrong_type(key, *v, "a number");
  return v->get<double>();
}

Result<bool> HfConfig::get_bool(std::string_view key) const {
  FABULA_ASSIGN(const Json* v, require(key));
  if (!v->is_boolean()) return wrong_type(key, *v, "true or false");
  return v->get<bool>();
}

Result<std::string> HfConfig::get_string(std::string_view key) const {
  FABULA_ASSIGN(const Json* v, require(key));
  if (!v->is_string()) return wrong_type(key, *v, "a string");
  return v->get<std::string>();
}

Result<std::vector<int64_t>> HfConfig::get_int_array(std::string_view key) const {
  FABULA_ASSIGN(const Json* v, require(key));
  if (!v->is_array()) return wrong_type(key, *v, "an array of integers");
  std::vector<int64_t> out;
  for (size_t i = 0; i < v->size(); ++i) {
    int64_t x;
    if (!to_int((*v)[i], &x)) return wrong_type(fmt::format("{}[{}]", key, i), (*v)[i], "an integer");
    out.push_back(x);
  }
  return out;
}

Result<std::vector<std::string>> HfConfig::get_string_array(std::string_view key) const {
  FABULA_ASSIGN(const Json* v, require(key));
  if (!v->is_array()) return wrong_type(key, *v, "an array of strings");
  std::vector<std::string> out;
  for (size_t i = 0; i < v->size(); ++i) {
    if (!(*v)[i].is_string()) return wrong_type(fmt::format("{}[{}]", key, i), (*v)[i], "a string");
    out.push_back((*v)[i].get<std::string>());
  }
  return out;
}

Result<HfConfig> HfConfig::get_object(std::string_view key) const {
  FABULA_ASSIGN(const Json* v, require(key));
  if (!v->is_object()) return wrong_type(key, *v, "an object");
  HfConfig out;
  out.name_ = fmt::format("{}: {}", name_, key);
  out.json_ = *v;
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

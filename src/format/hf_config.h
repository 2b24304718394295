// A thin reader for Hugging Face config.json: dotted key paths over JsonView's typed reads, with errors that name
// the file and the key.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/json_view.h"
#include "base/result.h"

namespace fabula {

// Keys are paths: "hidden_size", "rope_parameters.full_attention.rope_theta", "per_layer_config.2.head_dim".
// A path segment is an object key (a key that itself contains '.' is looked up whole first).
// Model-specific mapping (Gemma 4 field names) belongs to the model layer; this stays generic.
class HfConfig {
 public:
  static Result<HfConfig> load(const std::string& path);
  static Result<HfConfig> parse(std::string_view text, std::string name = "config.json");

  bool has(std::string_view key) const;  // present and not null

  Result<int64_t> get_int(std::string_view key) const;  // integers, or floats with an exact integer value
  Result<double> get_double(std::string_view key) const;  // any number
  Result<bool> get_bool(std::string_view key) const;
  Result<std::string> get_string(std::string_view key) const;
  Result<std::vector<int64_t>> get_int_array(std::string_view key) const;
  Result<std::vector<std::string>> get_string_array(std::string_view key) const;
  Result<HfConfig> get_object(std::string_view key) const;  // a nested object as its own config (e.g. "text_config")
  std::vector<std::string> keys() const;                     // top-level keys, sorted (as transformers writes them)

  // Missing or null -> the default; present with the wrong type -> an error (a typo'd type should not be silent).
  Result<int64_t> get_int_or(std::string_view key, int64_t fallback) const;
  Result<double> get_double_or(std::string_view key, double fallback) const;
  Result<bool> get_bool_or(std::string_view key, bool fallback) const;
  Result<std::string> get_string_or(std::string_view key, std::string fallback) const;

  const nlohmann::json& json() const { return json_; }
  const std::string& name() const { return name_; }

 private:
  // The value at `key`, nullptr when missing; null JSON values are returned (callers decide).
  const nlohmann::json* lookup(std::string_view key) const;
  // The value at `key` as a JsonView whose path is the key; missing is an error.
  Result<JsonView> require(std::string_view key) const;

  std::string name_;
  nlohmann::json json_;
};

}  // namespace fabula

// JsonView: typed, non-throwing reads of JSON that came from outside (files, HTTP bodies, saves, imports).
// Every accessor returns a Result whose error names where the JSON came from and the path of the bad field
// ("story.json: profiles.vn26b.memory: expected a boolean, got the string \"yes\""). Readers of untrusted JSON
// use only this; nlohmann's throwing accessors (.at, .get<T>, .value, operator[] on a const value) stay inside
// json_view.cpp, after the type has been checked (tests/base/source_rules_test.cpp enforces it).
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace fabula {

// Parses text as JSON without throwing; the error gives the position. Nesting deeper than max_depth is refused
// (deep nesting would overflow the stack of the recursive writers and comparisons).
Result<nlohmann::json> parse_json(std::string_view text, std::string_view where, int max_depth = 128);
// Serialises without throwing: bytes that are not UTF-8 (a model's or a file's) become U+FFFD.
std::string dump_json(const nlohmann::json& j, int indent = -1);

class JsonView {
 public:
  // `where`: the source ("story.json", "POST /api/choose"); `path`: the JSON path of this value ("" at the root).
  JsonView(const nlohmann::json& value, std::string where, std::string path = "")
      : value_(&value), where_(std::move(where)), path_(std::move(path)) {}

  const nlohmann::json& raw() const { return *value_; }
  const std::string& where() const { return where_; }
  const std::string& path() const { return path_; }
  // "where: path" (or "where" at the root): the prefix of every message about this value.
  std::string describe() const;

  bool is_null() const { return value_->is_null(); }
  bool is_object() const { return value_->is_object(); }
  bool is_array() const { return value_->is_array(); }
  bool is_string() const { return value_->is_string(); }
  bool is_bool() const { return value_->is_boolean(); }
  bool is_number() const { return value_->is_number(); }
  size_t size() const { return value_->is_array() || value_->is_object() ? value_->size() : 0; }

  // Children. has(): an object holding key with a non-null value.
  bool has(std::string_view key) const;
  Result<JsonView> field(std::string_view key) const;        // required: absent or null is an error
  std::optional<JsonView> find(std::string_view key) const;  // absent, null, or this is no object: nullopt
  Result<std::vector<JsonView>> elements() const;            // this must be an array
  Result<std::vector<std::pair<std::string, JsonView>>> members() const;  // this must be an object
  Status expect_object() const;
  // An object's keys outside `known` are an error naming the first (a misspelt field never passes silently).
  Status only_fields(std::initializer_list<std::string_view> known) const;

  // This value, typed.
  Result<std::string> string() const;
  Result<bool> boolean() const;
  // An integer (a float with an integral value is accepted) within [lo, hi].
  Result<int64_t> integer(int64_t lo = std::numeric_limits<int64_t>::min(),
                          int64_t hi = std::numeric_limits<int64_t>::max()) const;
  Result<uint64_t> unsigned_integer() const;
  Result<double> number() const;  // finite
  Result<std::vector<std::string>> strings() const;

  // A field, typed: required (absent or null is an error) or with a default when absent or null.
  Result<std::string> string(std::string_view key) const;
  Result<std::string> string_or(std::string_view key, std::string fallback) const;
  Result<bool> boolean_or(std::string_view key, bool fallback) const;
  Result<int64_t> integer(std::string_view key, int64_t lo = std::numeric_limits<int64_t>::min(),
                          int64_t hi = std::numeric_limits<int64_t>::max()) const;
  Result<int64_t> integer_or(std::string_view key, int64_t fallback, int64_t lo = std::numeric_limits<int64_t>::min(),
                             int64_t hi = std::numeric_limits<int64_t>::max()) const;
  Result<uint64_t> unsigned_or(std::string_view key, uint64_t fallback) const;
  Result<double> number_or(std::string_view key, double fallback) const;
  Result<std::vector<std::string>> strings(std::string_view key) const;     // required array of strings
  Result<std::vector<std::string>> strings_or_empty(std::string_view key) const;

  // An error about this value: "where: path: <message>".
  template <typename... Args>
  Error error(ErrorCode code, fmt::format_string<Args...> format, Args&&... args) const {
    return Error{code, describe() + ": " + fmt::format(format, std::forward<Args>(args)...)};
  }
  Error type_error(std::string_view expected) const;

 private:
  JsonView child(const nlohmann::json& value, std::string_view key) const;
  JsonView child(const nlohmann::json& value, size_t index) const;

  const nlohmann::json* value_;
  std::string where_;
  std::string path_;
};

}  // namespace fabula

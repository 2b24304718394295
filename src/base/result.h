// Result<T>: the error-or-value type every file-, network- or input-driven function returns.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace fabula {

// Stable error codes; messages carry the detail (file, offset, field, what was expected).
enum class ErrorCode {
  kInvalidArgument,  // caller or user passed something unusable
  kNotFound,         // file, tensor, key missing
  kIo,               // the OS refused (open, read, write, mmap)
  kCorrupt,          // a file's bytes break its format
  kUnsupported,      // well-formed but not something we handle
  kOutOfRange,       // a size or index beyond a limit
  kParse,            // text input (JSON, beat, CLI value) does not parse
  kCancelled,        // stopped on request
  kInternal,         // a bug: should not happen
};

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;

  // "corrupt: model.gguf: offset 24: n_kv ..." — what the CLI prints.
  std::string to_string() const;
};

template <typename... Args>
Error make_error(ErrorCode code, fmt::format_string<Args...> format, Args&&... args) {
  return Error{code, fmt::format(format, std::forward<Args>(args)...)};
}

// A value or an Error. Test with ok() / operator bool, then use value() / operator* / operator->.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}          // NOLINT: implicit on purpose
  Result(Error error) : state_(std::move(error)) {}      // NOLINT

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { return std::get<1>(state_); }
  Error&& take_error() { return std::get<1>(std::move(state_)); }

 private:
  std::variant<T, Error> state_;
};

// Status: a Result with no value.
struct Ok {};
using Status = Result<Ok>;
inline Status ok_status() { return Ok{}; }

}  // namespace fabula

// Propagate an error from an expression returning Result/Status.
#define FABULA_TRY(expr)                                   \
  do {                                                     \
    auto fabula_try_result_ = (expr);                      \
    if (!fabula_try_result_.ok())                          \
      return fabula_try_result_.take_error();              \
  } while (0)

#define FABULA_CONCAT_INNER_(a, b) a##b
#define FABULA_CONCAT_(a, b) FABULA_CONCAT_INNER_(a, b)

// FABULA_ASSIGN(auto x, expr): x = *expr, or return its error.
#define FABULA_ASSIGN(decl, expr) FABULA_ASSIGN_IMPL_(FABULA_CONCAT_(fabula_r_, __LINE__), decl, expr)
#define FABULA_ASSIGN_IMPL_(tmp, decl, expr) \
  auto tmp = (expr);                         \
  if (!tmp.ok()) return tmp.take_error();    \
  decl = std::move(tmp).value()

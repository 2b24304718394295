// ASCII case folding and trimming for names, keys, URLs and headers (never for story text, which is UTF-8), and
// byte-string splitting, replacement and percent-encoding.
#pragma once

#include <cctype>
#include <string>
#include <string_view>
#include <vector>

namespace fabula {

inline std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

inline std::string ascii_upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// `s` without the characters of `space` at either end.
inline std::string_view ascii_trim(std::string_view s, std::string_view space = " \t\r\n") {
  const size_t b = s.find_first_not_of(space);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(space) - b + 1);
}

// The parts of `s` between the `sep` bytes, empty ones included ("a,,b" -> a, "", b; "" -> one empty part).
inline std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  for (size_t pos = 0;;) {
    const size_t end = s.find(sep, pos);
    out.push_back(s.substr(pos, end == std::string_view::npos ? end : end - pos));
    if (end == std::string_view::npos) return out;
    pos = end + 1;
  }
}

// `s` with every occurrence of `from` (not empty) replaced by `to`, left to right.
inline std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  for (size_t pos = 0;;) {
    const size_t hit = s.find(from, pos);
    out.append(s.substr(pos, hit == std::string_view::npos ? hit : hit - pos));
    if (hit == std::string_view::npos) return out;
    out.append(to);
    pos = hit + from.size();
  }
}

// `s` percent-encoded (RFC 3986): unreserved bytes (letters, digits, - _ . ~) and those in `keep` stay as they are.
inline std::string percent_encode(std::string_view s, std::string_view keep = "") {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : s) {
    const auto b = static_cast<unsigned char>(c);
    const bool unreserved = std::isalnum(b) || std::string_view("-_.~").find(c) != std::string_view::npos;
    if (unreserved || keep.find(c) != std::string_view::npos) out += c;
    else out += {'%', kHex[b >> 4], kHex[b & 15]};
  }
  return out;
}

inline bool ascii_iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

}  // namespace fabula

// UTF-8 helpers for the detokenizer, the text splitters and Unicode normalisation: sequence lengths and lenient
// validation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace fabula {

// Bytes of the UTF-8 sequence a lead byte starts (1 for ASCII, continuation or invalid bytes).
inline size_t utf8_sequence_length(uint8_t lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;
}

// Appends the valid UTF-8 prefix of `in` to `out`, each invalid byte becoming U+FFFD. Unless `final`, an
// incomplete sequence at the end is left unconsumed. Returns the number of bytes of `in` consumed.
size_t utf8_sanitize(std::string_view in, std::string& out, bool final);

// True if `s` is entirely valid UTF-8.
bool utf8_valid(std::string_view s);

}  // namespace fabula

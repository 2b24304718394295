// Unicode helpers for the protocol and eval layers (utf8proc): NFC, case folding, code-point counts.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace fabula::protocol {

// NFC form of `text`; invalid UTF-8 is first repaired (bad bytes -> U+FFFD).
std::string nfc(std::string_view text);
// NFC + Unicode case folding (for case-insensitive comparisons of names and words).
std::string fold(std::string_view text);
// Number of code points (invalid bytes count one each).
size_t utf8_length(std::string_view text);
// Decodes one code point at `pos` (advancing it); invalid bytes give U+FFFD and advance by one.
int32_t utf8_next(std::string_view text, size_t& pos);

}  // namespace fabula::protocol

// Unicode helpers (utf8proc): NFC, case folding, code-point iteration.
#include "protocol/unicode.h"

#include <cstdlib>

#include <utf8proc.h>

#include "base/ascii.h"
#include "base/utf8.h"

namespace fabula::protocol {

int32_t utf8_next(std::string_view text, size_t& pos) {
  utf8proc_int32_t cp = 0;
  utf8proc_ssize_t n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + pos),
                                        static_cast<utf8proc_ssize_t>(text.size() - pos), &cp);
  if (n <= 0) {
    pos += 1;
    return 0xFFFD;
  }
  pos += static_cast<size_t>(n);
  return cp;
}

static std::string map_text(std::string_view text, int options) {
  std::string clean;
  utf8_sanitize(text, clean, /*final=*/true);
  utf8proc_uint8_t* result = nullptr;
  utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(clean.data()),
                                    static_cast<utf8proc_ssize_t>(clean.size()), &result,
                                    static_cast<utf8proc_option_t>(options));
  if (n < 0 || result == nullptr) {
    std::free(result);
    return clean;  // cannot happen after sanitising; keep the text rather than lose it
  }
  std::string out(reinterpret_cast<const char*>(result), static_cast<size_t>(n));
  std::free(result);
  return out;
}

std::string nfc(std::string_view text) {
  for (unsigned char c : text) {
    if (c >= 0x80) return map_text(text, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
  }
  return std::string(text);  // ASCII is already NFC
}

std::string fold(std::string_view text) {
  bool ascii = true;
  for (unsigned char c : text) ascii = ascii && c < 0x80;
  if (ascii) return ascii_lower(text);  // ASCII case folding is lower-casing, and ASCII is already NFC
  return map_text(text, UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD);
}

size_t utf8_length(std::string_view text) {
  size_t n = 0, pos = 0;
  while (pos < text.size()) {
    utf8_next(text, pos);
    ++n;
  }
  return n;
}


}  // namespace fabula::protocol

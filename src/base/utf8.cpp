// UTF-8 validation used by decode and the streaming detokenizer (never emits half a character).
#include "base/utf8.h"

namespace fabula {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// Length of a complete valid sequence at s[i], 0 if incomplete-but-plausible, -1 if invalid.
int sequence_at(std::string_view s, size_t i) {
  const uint8_t b0 = uint8_t(s[i]);
  if (b0 < 0x80) return 1;
  size_t n;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte (rejects overlongs and surrogates)
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return -1;
  }
  for (size_t k = 1; k < n; ++k) {
    if (i + k >= s.size()) return 0;
    const uint8_t b = uint8_t(s[i + k]);
    if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return -1;
  }
  return int(n);
}

}  // namespace

size_t utf8_sanitize(std::string_view in, std::string& out, bool final) {
  size_t i = 0;
  while (i < in.size()) {
    const int n = sequence_at(in, i);
    if (n > 0) {
      out.append(in.data() + i, size_t(n));
      i += size_t(n);
    } else if (n == 0 && !final) {
      break;
    } else {
      out += kReplacement;
      ++i;
      // An incomplete sequence at the very end becomes one U+FFFD, not one per byte.
      if (n == 0) {
        while (i < in.size() && (uint8_t(in[i]) & 0xC0) == 0x80) ++i;
      }
    }
  }
  return i;
}

bool utf8_valid(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const int n = sequence_at(s, i);
    if (n <= 0) return false;
    i += size_t(n);
  }
  return true;
}

}  // namespace fabula

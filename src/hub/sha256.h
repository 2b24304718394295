// Streaming SHA-256 (OpenSSL's EVP), the hash the Hub reports for LFS files.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "base/result.h"

namespace fabula::hub {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void update(const void* data, size_t size);
  std::string hex_digest();  // 64 lower-case hex digits; the object is spent afterwards

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Hashes `size` bytes of a file from its start (resuming a partial download re-reads what is there).
Result<Sha256> sha256_file_prefix(const std::string& path, uint64_t size);

bool is_sha256_hex(std::string_view text);

}  // namespace fabula::hub

// Sha256 over OpenSSL's EVP digest interface.
#include "hub/sha256.h"

#include <openssl/evp.h>

#include <cstdio>
#include <vector>

namespace fabula::hub {

struct Sha256::Impl {
  EVP_MD_CTX* ctx = nullptr;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  impl_->ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr);
}

Sha256::~Sha256() {
  if (impl_ && impl_->ctx) EVP_MD_CTX_free(impl_->ctx);
}

Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(const void* data, size_t size) { EVP_DigestUpdate(impl_->ctx, data, size); }

std::string Sha256::hex_digest() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(impl_->ctx, digest, &n);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

Result<Sha256> sha256_file_prefix(const std::string& path, uint64_t size) {
  Sha256 hash;
  if (size == 0) return hash;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return make_error(ErrorCode::kIo, "{}: cannot open to re-hash", path);
  std::vector<char> buffer(1 << 20);
  uint64_t left = size;
  while (left > 0) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(left, buffer.size()));
    const size_t got = std::fread(buffer.data(), 1, want, f);
    if (got == 0) break;
    hash.update(buffer.data(), got);
    left -= got;
  }
  std::fclose(f);
  if (left != 0) return make_error(ErrorCode::kIo, "{}: shorter than the {} bytes expected", path, size);
  return hash;
}

bool is_sha256_hex(std::string_view text) {
  if (text.size() != 64) return false;
  for (char c : text)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace fabula::hub

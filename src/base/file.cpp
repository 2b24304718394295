// Whole-file read and crash-safe write.
#include "base/file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace fabula {

Result<std::string> read_file_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, "{}: cannot open for reading", path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return make_error(ErrorCode::kIo, "{}: read failed", path);
  return buffer.str();
}

AtomicFile::~AtomicFile() {
  if (f_ != nullptr) std::fclose(f_);
  if (!committed_) ::unlink(tmp_.c_str());
}

Status AtomicFile::open() {
  f_ = std::fopen(tmp_.c_str(), "wbe");
  if (f_ == nullptr) return make_error(ErrorCode::kIo, "{}: cannot create: {}", tmp_, std::strerror(errno));
  std::setvbuf(f_, nullptr, _IOFBF, 1 << 20);
  return ok_status();
}

Status AtomicFile::write(const void* p, size_t n) {
  if (n != 0 && std::fwrite(p, 1, n, f_) != n) {
    return make_error(ErrorCode::kIo, "{}: write failed: {}", tmp_, std::strerror(errno));
  }
  return ok_status();
}

Status AtomicFile::skip(uint64_t n, uint64_t end) {
  if (std::fflush(f_) != 0 || ::fseeko(f_, static_cast<off_t>(n), SEEK_CUR) != 0 ||
      ::ftruncate(::fileno(f_), static_cast<off_t>(end)) != 0) {
    return make_error(ErrorCode::kIo, "{}: cannot extend: {}", tmp_, std::strerror(errno));
  }
  return ok_status();
}

Status AtomicFile::commit() {
  bool ok = std::fflush(f_) == 0 && ::fsync(::fileno(f_)) == 0;
  ok = std::fclose(f_) == 0 && ok;
  f_ = nullptr;
  if (!ok) return make_error(ErrorCode::kIo, "{}: fsync/close failed: {}", tmp_, std::strerror(errno));
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    return make_error(ErrorCode::kIo, "{}: rename to {} failed: {}", tmp_, path_, std::strerror(errno));
  }
  committed_ = true;
  return ok_status();
}

Status write_file_atomic(const std::string& path, std::span<const uint8_t> bytes) {
  AtomicFile out(path);
  FABULA_TRY(out.open());
  FABULA_TRY(out.write(bytes.data(), bytes.size()));
  return out.commit();
}

Status write_file_atomic(const std::string& path, const std::string& text) {
  return write_file_atomic(path, std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace fabula

// Whole-file helpers: read text, write atomically (temp file + fsync + rename, so a crash never leaves half a file).
#pragma once

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <utility>

#include "base/result.h"

namespace fabula {

// A file written in pieces to path + ".tmp" and renamed onto `path` by commit() after an fsync, so neither a crash
// nor an error leaves half a file under `path`; the temporary file is removed unless committed.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path) : path_(std::move(path)), tmp_(path_ + ".tmp") {}
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  Status open();
  Status write(const void* p, size_t n);
  // Leaves a hole of n zero bytes (sparse on file systems that support it); `end` is the final file size.
  Status skip(uint64_t n, uint64_t end);
  Status commit();

 private:
  std::string path_;
  std::string tmp_;
  std::FILE* f_ = nullptr;
  bool committed_ = false;
};

Result<std::string> read_file_text(const std::string& path);
Status write_file_atomic(const std::string& path, std::span<const uint8_t> bytes);
Status write_file_atomic(const std::string& path, const std::string& text);
bool file_exists(const std::string& path);

}  // namespace fabula

// MappedFile: a read-only memory mapping of a whole file; owns the bytes that tensor views borrow.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"

namespace fabula {

// How MappedFile::read goes through the page cache: past it where the file system allows (direct reads, the
// default), or through it (the same bytes; for tests and comparisons).
enum class ReadCache { kBypass, kThrough };

class MappedFile {
 public:
  // Maps `path` read-only. An empty file maps to an empty span. Errors name the path.
  static Result<MappedFile> open(const std::string& path);
  // Reads `path` into anonymous memory instead of mapping it (llama.cpp's --no-mmap): the bytes no longer depend
  // on the page cache, at the price of a full read up front. The read bypasses the page cache where the file
  // system allows it, so the file is not held twice in memory while it loads.
  static Result<MappedFile> read(const std::string& path, ReadCache cache = ReadCache::kBypass);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  bool is_copy() const { return copy_; }  // read() into anonymous memory, not a mapping of the file

  // Ask for transparent huge pages on the mapping (fewer TLB misses while streaming weights); silently nothing
  // where the kernel or file system cannot back a file mapping with them.
  void advise_hugepages() const;
  // Maps every page now (MADV_POPULATE_READ; llama.cpp maps with MAP_POPULATE): a decode step never stops on a
  // page fault, or a disk read, for a weight it touches first (a routed expert), and load time shows the real cost
  // of a cold page cache. Silently nothing where the kernel lacks it (before Linux 5.14) or for read() copies.
  void prefault() const;
  // Pins the bytes in RAM (llama.cpp's --mlock) so the kernel never pages them out; the error says how to raise
  // RLIMIT_MEMLOCK when the limit is too low.
  Status lock() const;

 private:
  // `size` bytes mapped with ::mmap's prot, flags and fd (nothing for 0), owned by the result; the error names
  // path and `what` failed ("mmap", "allocate").
  static Result<MappedFile> mapping(const std::string& path, size_t size, int prot, int flags, int fd,
                                    std::string_view what);
  void release();

  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
  bool copy_ = false;
};

}  // namespace fabula

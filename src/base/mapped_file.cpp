// POSIX mmap behind MappedFile.
#include "base/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace fabula {

namespace {

// An open descriptor of a regular file and its size, closed when this goes (a mapping stays valid without it).
struct OpenedFile {
  OpenedFile(int fd, size_t size) : fd(fd), size(size) {}
  OpenedFile(OpenedFile&& other) noexcept : fd(std::exchange(other.fd, -1)), size(other.size) {}
  OpenedFile& operator=(OpenedFile&&) = delete;
  ~OpenedFile() {
    if (fd >= 0) ::close(fd);
  }
  int fd;
  size_t size;
};

Result<OpenedFile> open_regular_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return make_error(errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo, "{}: cannot open: {}", path,
                      std::strerror(errno));
  }
  OpenedFile opened(fd, 0);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return make_error(ErrorCode::kIo, "{}: cannot stat: {}", path, std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return make_error(ErrorCode::kInvalidArgument, "{}: not a regular file", path);
  opened.size = static_cast<size_t>(st.st_size);
  return opened;
}

}  // namespace

Result<MappedFile> MappedFile::mapping(const std::string& path, size_t size, int prot, int flags, int fd,
                                       std::string_view what) {
  MappedFile file;
  file.path_ = path;
  file.size_ = size;
  if (size == 0) return file;
  void* p = ::mmap(nullptr, size, prot, flags, fd, 0);
  if (p == MAP_FAILED)
    return make_error(ErrorCode::kIo, "{}: cannot {} {} bytes: {}", path, what, size, std::strerror(errno));
  file.data_ = static_cast<const uint8_t*>(p);  // owned from here: released on every path
  return file;
}

Result<MappedFile> MappedFile::open(const std::string& path) {
  FABULA_ASSIGN(const OpenedFile opened, open_regular_file(path));
  return mapping(path, opened.size, PROT_READ, MAP_PRIVATE, opened.fd, "mmap");
}

Result<MappedFile> MappedFile::read(const std::string& path, ReadCache cache) {
  FABULA_ASSIGN(const OpenedFile opened, open_regular_file(path));
  FABULA_ASSIGN(MappedFile file,
                mapping(path, opened.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, "allocate"));
  file.copy_ = true;
  auto* p = const_cast<uint8_t*>(file.data_);
  if (p == nullptr) return file;
#ifdef MADV_HUGEPAGE
  // Before the first touch: the read below faults every page in, and only pages faulted after this advice come
  // as 2 MiB pages (advice given later, as advise_hugepages() does, waits for khugepaged to collapse them).
  ::madvise(p, file.size_, MADV_HUGEPAGE);
#endif
  // Chunks of kReadChunk taken by a few threads: one thread copying from the page cache and faulting in the huge
  // pages read the 16.8 GB synth 26B at 1.0-1.5 GB/s, two at 2.1 GB/s (2-core Zen 3 VM).
  constexpr size_t kReadChunk = size_t{64} << 20;
  // Direct reads (O_DIRECT), past the page cache, where the file system takes them. A buffered read of a file near
  // the size of memory fills the page cache with a second copy, and once memory runs out the last part of the
  // weights lands in memory just reclaimed from that cache. On the KVM guest of BENCHMARKS.md (session 28), which
  // hands freed memory back to its host, that part then streamed 10-25% slower than the rest for minutes, and
  // decode reads all of it; read directly, every part streams alike and a cold load is faster (29 s against 35).
  // Direct reads need block-aligned offsets, lengths and addresses: every chunk starts at a multiple of kReadChunk
  // in a page-aligned mapping, and the last length rounds up into the mapping's last page. A file system that
  // refuses them (at open or at the first read, EINVAL: tmpfs, some FUSE) gets buffered reads.
  constexpr size_t kDirectAlign = 4096;
  const OpenedFile direct(cache == ReadCache::kBypass ? ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT) : -1,
                          opened.size);
  std::atomic<bool> use_direct{direct.fd >= 0};
  const size_t mapped_end = (file.size_ + kDirectAlign - 1) / kDirectAlign * kDirectAlign;
  const size_t chunks = (file.size_ + kReadChunk - 1) / kReadChunk;
  const size_t n_threads = std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 4);
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::string error;
  auto read_chunks = [&] {
    for (size_t c = next.fetch_add(1); c < chunks && !failed.load(); c = next.fetch_add(1)) {
      const size_t begin = c * kReadChunk, end = std::min(file.size_, begin + kReadChunk);
      for (size_t done = begin; done < end;) {
        // A short direct read (the file's end) leaves `done` unaligned: the rest of the chunk goes buffered.
        const bool by_direct = use_direct.load(std::memory_order_relaxed) && done % kDirectAlign == 0;
        const size_t want = by_direct ? std::min(mapped_end, (end + kDirectAlign - 1) / kDirectAlign * kDirectAlign) - done
                                      : end - done;
        const ssize_t n = ::pread(by_direct ? direct.fd : opened.fd, p + done, want, static_cast<off_t>(done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && by_direct && errno == EINVAL) {  // the file system takes no direct reads: buffered from here
          use_direct.store(false, std::memory_order_relaxed);
          continue;
        }
        if (n <= 0) {
          const std::lock_guard<std::mutex> lock(error_mutex);
          if (!failed.exchange(true)) {
            error = fmt::format("{}: read failed at byte {} of {}: {}", path, done, file.size_,
                                std::strerror(n < 0 ? errno : EIO));
          }
          return;
        }
        done += std::min(static_cast<size_t>(n), end - done);  // a direct read's last block may run past `end`
      }
    }
  };
  std::vector<std::thread> helpers;
  for (size_t t = 1; t < std::min(n_threads, chunks); ++t) helpers.emplace_back(read_chunks);
  read_chunks();
  for (std::thread& h : helpers) h.join();
  if (failed.load()) return make_error(ErrorCode::kIo, "{}", error);
  return file;
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      path_(std::move(other.path_)),
      copy_(std::exchange(other.copy_, false)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    path_ = std::move(other.path_);
    copy_ = std::exchange(other.copy_, false);
  }
  return *this;
}

MappedFile::~MappedFile() { release(); }

void MappedFile::release() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
}

void MappedFile::advise_hugepages() const {
#ifdef MADV_HUGEPAGE
  if (data_ != nullptr) ::madvise(const_cast<uint8_t*>(data_), size_, MADV_HUGEPAGE);
#endif
}

void MappedFile::prefault() const {
#ifdef MADV_POPULATE_READ
  if (data_ != nullptr) ::madvise(const_cast<uint8_t*>(data_), size_, MADV_POPULATE_READ);
#endif
}

Status MappedFile::lock() const {
  if (data_ == nullptr) return ok_status();
  if (::mlock(data_, size_) != 0) {
    int err = errno;
    return make_error(ErrorCode::kIo,
                      "{}: cannot lock {} bytes in memory: {} (raise the limit with `ulimit -l unlimited` or "
                      "LimitMEMLOCK=infinity, or drop --mlock)",
                      path_, size_, std::strerror(err));
  }
  return ok_status();
}

}  // namespace fabula

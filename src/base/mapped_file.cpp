// POSIX mmap behind MappedFile.
#include "base/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

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

Result<MappedFile> MappedFile::read(const std::string& path) {
  FABULA_ASSIGN(const OpenedFile opened, open_regular_file(path));
  FABULA_ASSIGN(MappedFile file,
                mapping(path, opened.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, "allocate"));
  auto* p = const_cast<uint8_t*>(file.data_);
  if (p == nullptr) return file;
#ifdef MADV_HUGEPAGE
  // Before the first touch: the read below faults every page in, and only pages faulted after this advice come
  // as 2 MiB pages (advice given later, as advise_hugepages() does, waits for khugepaged to collapse them).
  ::madvise(p, file.size_, MADV_HUGEPAGE);
#endif
  size_t done = 0;
  while (done < file.size_) {
    ssize_t n = ::read(opened.fd, p + done, file.size_ - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return make_error(ErrorCode::kIo, "{}: read failed after {} of {} bytes: {}", path, done, file.size_,
                        std::strerror(n < 0 ? errno : EIO));
    }
    done += static_cast<size_t>(n);
  }
  return file;
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)), path_(std::move(other.path_)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    path_ = std::move(other.path_);
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

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

// An open descriptor of a regular file and its size; the caller closes fd.
struct OpenedFile {
  int fd = -1;
  size_t size = 0;
};

Result<OpenedFile> open_regular_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return make_error(errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo, "{}: cannot open: {}", path,
                      std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return make_error(ErrorCode::kIo, "{}: cannot stat: {}", path, std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(ErrorCode::kInvalidArgument, "{}: not a regular file", path);
  }
  return OpenedFile{fd, static_cast<size_t>(st.st_size)};
}

}  // namespace

Result<MappedFile> MappedFile::open(const std::string& path) {
  FABULA_ASSIGN(OpenedFile opened, open_regular_file(path));
  const int fd = opened.fd;
  MappedFile file;
  file.path_ = path;
  file.size_ = opened.size;
  if (file.size_ > 0) {
    void* p = ::mmap(nullptr, file.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      return make_error(ErrorCode::kIo, "{}: cannot mmap {} bytes: {}", path, file.size_, std::strerror(err));
    }
    file.data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);  // the mapping stays valid without the descriptor
  return file;
}

Result<MappedFile> MappedFile::read(const std::string& path) {
  FABULA_ASSIGN(OpenedFile opened, open_regular_file(path));
  const int fd = opened.fd;
  MappedFile file;
  file.path_ = path;
  file.size_ = opened.size;
  if (file.size_ > 0) {
    void* p = ::mmap(nullptr, file.size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      return make_error(ErrorCode::kIo, "{}: cannot allocate {} bytes: {}", path, file.size_, std::strerror(err));
    }
    file.data_ = static_cast<const uint8_t*>(p);  // owned from here: released on every path below
#ifdef MADV_HUGEPAGE
    // Before the first touch: the read below faults every page in, and only pages faulted after this advice come
    // as 2 MiB pages (advice given later, as advise_hugepages() does, waits for khugepaged to collapse them).
    ::madvise(p, file.size_, MADV_HUGEPAGE);
#endif
    size_t done = 0;
    while (done < file.size_) {
      ssize_t n = ::read(fd, static_cast<uint8_t*>(p) + done, file.size_ - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        int err = n < 0 ? errno : EIO;
        ::close(fd);
        return make_error(ErrorCode::kIo, "{}: read failed after {} of {} bytes: {}", path, done, file.size_,
                          std::strerror(err));
      }
      done += static_cast<size_t>(n);
    }
  }
  ::close(fd);
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

// FaultyVfs: forwards every call to the default VFS, counting writes, syncs and locks, and failing the planned one.
#include "faulty_vfs.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <mutex>
#include <vector>

namespace fabula::test_support {
namespace {

// What a write or truncate overwrote, to put back after a power cut (if the file was not synced since).
struct Undo {
  std::string path;
  int64_t offset = 0;
  std::string old_bytes;  // the bytes at [offset, offset + size) before, as far as the file reached
  int64_t old_size = 0;   // the file's size before
};

struct State {
  std::mutex mu;
  sqlite3_vfs* real = nullptr;
  sqlite3_vfs shim{};
  sqlite3_io_methods methods{};
  FaultPlan plan;
  int counts[3] = {0, 0, 0};
  bool fired = false;
  bool dead = false;  // the power is off
  std::vector<Undo> unsynced;
};

State& state() {
  static State s;
  return s;
}

struct ShimFile {
  sqlite3_file base;
  sqlite3_file* real;  // placed right after this struct, in the same allocation
  std::string* path;
};

sqlite3_file* real_of(sqlite3_file* f) { return reinterpret_cast<ShimFile*>(f)->real; }
const std::string& path_of(sqlite3_file* f) { return *reinterpret_cast<ShimFile*>(f)->path; }

// Counts an operation; returns the error to give instead of doing it, or SQLITE_OK.
int check(FaultOp op, int dead_code) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.dead) return dead_code;
  int n = ++s.counts[static_cast<int>(op)];
  if (s.plan.at == 0 || s.plan.op != op || n != s.plan.at) return SQLITE_OK;
  s.fired = true;
  if (s.plan.power_cut) s.dead = true;
  return s.plan.code;
}

bool is_dead() {
  std::lock_guard<std::mutex> lock(state().mu);
  return state().dead;
}

// The bytes of [offset, offset + size) and the file size, before a change, for the undo log.
void remember(sqlite3_file* f, int64_t offset, int64_t size) {
  const std::string& path = path_of(f);
  if (path.empty()) return;  // a temporary file: gone after a power cut anyway
  sqlite3_file* r = real_of(f);
  sqlite3_int64 file_size = 0;
  if (r->pMethods->xFileSize(r, &file_size) != SQLITE_OK) return;
  Undo u;
  u.path = path;
  u.offset = offset;
  u.old_size = file_size;
  int64_t have = std::max<int64_t>(0, std::min<int64_t>(size, file_size - offset));
  u.old_bytes.resize(static_cast<size_t>(have));
  if (have > 0) r->pMethods->xRead(r, u.old_bytes.data(), static_cast<int>(have), offset);
  std::lock_guard<std::mutex> lock(state().mu);
  state().unsynced.push_back(std::move(u));
}

int x_close(sqlite3_file* f) {
  int rc = real_of(f)->pMethods ? real_of(f)->pMethods->xClose(real_of(f)) : SQLITE_OK;
  delete reinterpret_cast<ShimFile*>(f)->path;
  return rc;
}
int x_read(sqlite3_file* f, void* buf, int amt, sqlite3_int64 off) {
  if (is_dead()) return SQLITE_IOERR_READ;
  return real_of(f)->pMethods->xRead(real_of(f), buf, amt, off);
}
int x_write(sqlite3_file* f, const void* buf, int amt, sqlite3_int64 off) {
  if (int rc = check(FaultOp::kWrite, SQLITE_IOERR_WRITE); rc != SQLITE_OK) return rc;
  remember(f, off, amt);
  return real_of(f)->pMethods->xWrite(real_of(f), buf, amt, off);
}
int x_truncate(sqlite3_file* f, sqlite3_int64 size) {
  if (is_dead()) return SQLITE_IOERR_TRUNCATE;
  sqlite3_int64 now = 0;
  if (real_of(f)->pMethods->xFileSize(real_of(f), &now) == SQLITE_OK && now > size) remember(f, size, now - size);
  return real_of(f)->pMethods->xTruncate(real_of(f), size);
}
int x_sync(sqlite3_file* f, int flags) {
  if (int rc = check(FaultOp::kSync, SQLITE_IOERR_FSYNC); rc != SQLITE_OK) return rc;
  int rc = real_of(f)->pMethods->xSync(real_of(f), flags);
  if (rc == SQLITE_OK) {
    std::lock_guard<std::mutex> lock(state().mu);
    auto& log = state().unsynced;
    const std::string& path = path_of(f);
    std::erase_if(log, [&](const Undo& u) { return u.path == path; });
  }
  return rc;
}
int x_file_size(sqlite3_file* f, sqlite3_int64* size) { return real_of(f)->pMethods->xFileSize(real_of(f), size); }
int x_lock(sqlite3_file* f, int level) {
  if (int rc = check(FaultOp::kLock, SQLITE_IOERR_LOCK); rc != SQLITE_OK) return rc;
  return real_of(f)->pMethods->xLock(real_of(f), level);
}
int x_unlock(sqlite3_file* f, int level) { return real_of(f)->pMethods->xUnlock(real_of(f), level); }
int x_check_reserved(sqlite3_file* f, int* out) { return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out); }
int x_file_control(sqlite3_file* f, int op, void* arg) { return real_of(f)->pMethods->xFileControl(real_of(f), op, arg); }
int x_sector_size(sqlite3_file* f) { return real_of(f)->pMethods->xSectorSize(real_of(f)); }
int x_device(sqlite3_file* f) { return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f)); }
int x_shm_map(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  return real_of(f)->pMethods->xShmMap(real_of(f), region, size, extend, out);
}
int x_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  if (flags & SQLITE_SHM_LOCK) {
    if (int rc = check(FaultOp::kLock, SQLITE_IOERR_SHMLOCK); rc != SQLITE_OK) return rc;
  }
  return real_of(f)->pMethods->xShmLock(real_of(f), offset, n, flags);
}
void x_shm_barrier(sqlite3_file* f) { real_of(f)->pMethods->xShmBarrier(real_of(f)); }
int x_shm_unmap(sqlite3_file* f, int del) { return real_of(f)->pMethods->xShmUnmap(real_of(f), del); }
int x_fetch(sqlite3_file* f, sqlite3_int64 off, int amt, void** out) {
  *out = nullptr;  // no memory-mapped reads: every read goes through xRead
  (void)f, (void)off, (void)amt;
  return SQLITE_OK;
}
int x_unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) {
  (void)f, (void)off, (void)p;
  return SQLITE_OK;
}

int x_open(sqlite3_vfs*, const char* name, sqlite3_file* f, int flags, int* out_flags) {
  State& s = state();
  auto* shim = reinterpret_cast<ShimFile*>(f);
  shim->real = reinterpret_cast<sqlite3_file*>(shim + 1);
  shim->path = new std::string(name ? name : "");
  shim->base.pMethods = nullptr;
  int rc = s.real->xOpen(s.real, name, shim->real, flags, out_flags);
  if (rc != SQLITE_OK) {
    delete shim->path;
    return rc;
  }
  shim->base.pMethods = &s.methods;
  return SQLITE_OK;
}
int x_delete(sqlite3_vfs*, const char* name, int sync_dir) {
  if (is_dead()) return SQLITE_IOERR_DELETE;
  return state().real->xDelete(state().real, name, sync_dir);
}
int x_access(sqlite3_vfs*, const char* name, int flags, int* out) { return state().real->xAccess(state().real, name, flags, out); }
int x_full_pathname(sqlite3_vfs*, const char* name, int n, char* out) {
  return state().real->xFullPathname(state().real, name, n, out);
}
void* x_dl_open(sqlite3_vfs*, const char* name) { return state().real->xDlOpen(state().real, name); }
void x_dl_error(sqlite3_vfs*, int n, char* out) { state().real->xDlError(state().real, n, out); }
void (*x_dl_sym(sqlite3_vfs*, void* h, const char* sym))(void) { return state().real->xDlSym(state().real, h, sym); }
void x_dl_close(sqlite3_vfs*, void* h) { state().real->xDlClose(state().real, h); }
int x_randomness(sqlite3_vfs*, int n, char* out) { return state().real->xRandomness(state().real, n, out); }
int x_sleep(sqlite3_vfs*, int us) { return state().real->xSleep(state().real, us); }
int x_current_time(sqlite3_vfs*, double* out) { return state().real->xCurrentTime(state().real, out); }
int x_last_error(sqlite3_vfs*, int n, char* out) { return state().real->xGetLastError(state().real, n, out); }
int x_current_time64(sqlite3_vfs*, sqlite3_int64* out) { return state().real->xCurrentTimeInt64(state().real, out); }

}  // namespace

const char* fault_op_name(FaultOp op) {
  switch (op) {
    case FaultOp::kWrite: return "write";
    case FaultOp::kSync: return "sync";
    case FaultOp::kLock: return "lock";
  }
  return "?";
}

FaultyVfs& FaultyVfs::install() {
  static FaultyVfs vfs;
  static std::once_flag once;
  std::call_once(once, [] {
    State& s = state();
    s.real = sqlite3_vfs_find(nullptr);
    s.shim = *s.real;
    s.shim.iVersion = 2;  // no xNextSystemCall & co.
    s.shim.szOsFile = static_cast<int>(sizeof(ShimFile)) + s.real->szOsFile;
    s.shim.zName = "fabula-faulty";
    s.shim.pNext = nullptr;
    s.shim.xOpen = x_open;
    s.shim.xDelete = x_delete;
    s.shim.xAccess = x_access;
    s.shim.xFullPathname = x_full_pathname;
    s.shim.xDlOpen = x_dl_open;
    s.shim.xDlError = x_dl_error;
    s.shim.xDlSym = x_dl_sym;
    s.shim.xDlClose = x_dl_close;
    s.shim.xRandomness = x_randomness;
    s.shim.xSleep = x_sleep;
    s.shim.xCurrentTime = x_current_time;
    s.shim.xGetLastError = x_last_error;
    s.shim.xCurrentTimeInt64 = x_current_time64;
    s.methods = sqlite3_io_methods{3,          x_close,       x_read,          x_write,    x_truncate,
                                   x_sync,     x_file_size,   x_lock,          x_unlock,   x_check_reserved,
                                   x_file_control, x_sector_size, x_device,    x_shm_map,  x_shm_lock,
                                   x_shm_barrier,  x_shm_unmap,   x_fetch,     x_unfetch};
    sqlite3_vfs_register(&s.shim, /*makeDflt=*/1);
  });
  return vfs;
}

void FaultyVfs::arm(const FaultPlan& plan) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  s.plan = plan;
  for (int& c : s.counts) c = 0;
  s.fired = false;
  s.dead = false;
  s.unsynced.clear();
}

int FaultyVfs::drop_unsynced_writes() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  int dropped = 0;
  for (auto it = s.unsynced.rbegin(); it != s.unsynced.rend(); ++it) {
    int fd = ::open(it->path.c_str(), O_WRONLY);
    if (fd < 0) continue;
    if (!it->old_bytes.empty())
      (void)!::pwrite(fd, it->old_bytes.data(), it->old_bytes.size(), static_cast<off_t>(it->offset));
    (void)!::ftruncate(fd, static_cast<off_t>(it->old_size));
    ::close(fd);
    ++dropped;
  }
  s.unsynced.clear();
  s.dead = false;
  return dropped;
}

int FaultyVfs::count(FaultOp op) const {
  std::lock_guard<std::mutex> lock(state().mu);
  return state().counts[static_cast<int>(op)];
}

bool FaultyVfs::fired() const {
  std::lock_guard<std::mutex> lock(state().mu);
  return state().fired;
}

}  // namespace fabula::test_support

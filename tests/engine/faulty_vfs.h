// FaultyVfs: a SQLite VFS that wraps the default one and fails the Nth write, sync or lock (I/O error or disk
// full), or cuts the power there: that operation and every later one fail, and when the connection has closed,
// every write not yet synced to its file is undone, as the page cache would lose it.
#pragma once

#include <cstdint>
#include <string>

namespace fabula::test_support {

enum class FaultOp { kWrite, kSync, kLock };

const char* fault_op_name(FaultOp op);

struct FaultPlan {
  FaultOp op = FaultOp::kWrite;
  int at = 0;             // 1-based index of the operation of that kind to fail; 0: no fault
  int code = 0;           // SQLite error code returned (SQLITE_IOERR_WRITE, SQLITE_FULL, ...)
  bool power_cut = false; // from the failing operation on, nothing reaches the disk
};

class FaultyVfs {
 public:
  // Registers the shim as SQLite's default VFS (once per process) and returns it.
  static FaultyVfs& install();

  // Starts counting operations afresh under `plan` (FaultPlan{} only counts).
  void arm(const FaultPlan& plan);
  // After a power cut, once every connection has closed: undoes each write not followed by a sync of its file.
  // Returns how many writes were dropped.
  int drop_unsynced_writes();

  int count(FaultOp op) const;  // operations of that kind seen since arm()
  bool fired() const;           // the planned fault happened
};

}  // namespace fabula::test_support

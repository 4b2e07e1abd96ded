#pragma once
// An exclusive flock(2) held for an object's lifetime: one process at a time may use what
// it guards (a run directory, a trunk cache file), also where HDF5's own locking is off.
// Local file systems and Lustre honour it; NFS maps it to POSIX locks.
#include <optional>
#include <string>

namespace sparser::util {

class FileLock {
 public:
  // Locks `path` (created if missing) without waiting: nullopt when another process
  // holds it; std::runtime_error naming the file when it cannot be opened or locked.
  static std::optional<FileLock> try_acquire(const std::string& path);

  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();  // releases the lock

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace sparser::util

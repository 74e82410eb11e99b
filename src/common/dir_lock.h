// An exclusive lock on a directory that mapgate writes (a run directory, a demo's output),
// held for as long as the object lives: a second process that wants the same directory
// refuses in one line instead of interleaving its files with the first one's.
#pragma once

#include <string>

namespace mapgate {

// flock(2) on DIR/.mapgate-lock. The kernel drops the lock when the process dies (a
// killed run never leaves a stale lock), and it is per open file, so two DirLocks on one
// directory conflict inside one process too. The file keeps the holder's pid for the
// message; it stays behind, empty of meaning, when the holder ends.
class DirLock {
 public:
  // Throws Error "`flag` "DIR": in use by another mapgate process (pid N); ..." when
  // the lock is held, or naming the file when it cannot be created. DIR must exist.
  DirLock(const std::string& dir, const std::string& flag);
  ~DirLock();
  DirLock(DirLock&& other) noexcept;
  DirLock& operator=(DirLock&&) = delete;
  DirLock(const DirLock&) = delete;

 private:
  int fd_ = -1;
};

inline constexpr const char* kDirLockFile = ".mapgate-lock";

// True when both paths exist and are one file (after symlinks: same device and inode).
bool same_file(const std::string& a, const std::string& b);

}  // namespace mapgate

// DirLock: flock(2) on a file inside the directory (dir_lock.h).
#include "common/dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common/error.h"

namespace mapgate {
namespace {

// The pid the holder wrote, or "" when it cannot be read.
std::string holder_pid(int fd) {
  char text[24] = {};
  const ssize_t got = ::pread(fd, text, sizeof text - 1, 0);
  if (got <= 0) return "";
  std::string pid(text, static_cast<std::size_t>(got));
  return pid.find_first_not_of("0123456789") == std::string::npos ? pid : "";
}

}  // namespace

DirLock::DirLock(const std::string& dir, const std::string& flag) {
  const std::string path = dir + "/" + kDirLockFile;
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd_ < 0) throw Error(flag + " " + quoted(dir) + ": cannot create its lock file (" + std::strerror(errno) + ")");
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    const std::string pid = holder_pid(fd_);
    ::close(fd_);
    if (err != EWOULDBLOCK)
      throw Error(flag + " " + quoted(dir) + ": cannot lock it (" + std::strerror(err) + ")");
    throw Error(flag + " " + quoted(dir) + ": in use by another mapgate process" +
                (pid.empty() ? "" : " (pid " + pid + ")") + "; wait for it to end or choose another directory");
  }
  // The pid is only for the other process's message: the lock holds without it.
  const std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd_, 0) == 0) (void)!::pwrite(fd_, pid.data(), pid.size(), 0);
}

DirLock::~DirLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the lock
}

DirLock::DirLock(DirLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

}  // namespace mapgate

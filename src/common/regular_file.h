// Reads an input file only if it is a regular file (after symlinks) no larger than what
// its format can hold: a FIFO, a directory, /dev/zero or /dev/urandom is a one-line error
// naming the file, never a hang or an unbounded allocation. Header-only because both
// mapgate_data (file_io.cpp) and mapgate_engine (weights.cpp) use it and share no library.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "common/error.h"

namespace mapgate {

// The most bytes a file of some format may hold, and why, for the message:
// {184380000, "a CIFAR-10 file can hold (all 60000 images)"} reads as
// `... 200000000 bytes, more than the 184380000 bytes a CIFAR-10 file can hold (...)`.
struct SizeLimit {
  std::uint64_t max_bytes;
  std::string why;
};

// "is a FIFO (named pipe)" for what `mode` says a non-regular file is.
inline std::string file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "is a directory";
  if (S_ISFIFO(mode)) return "is a FIFO (named pipe)";
  if (S_ISCHR(mode)) return "is a character device";
  if (S_ISBLK(mode)) return "is a block device";
  if (S_ISSOCK(mode)) return "is a socket";
  return "is not a regular file";
}

inline std::string too_big(std::uint64_t found, const SizeLimit& limit) {
  return std::to_string(found) + " bytes, more than the " + std::to_string(limit.max_bytes) +
         " bytes " + limit.why;
}

// Throws Error "`subject` "path": ..." unless `path` is a regular file after symlinks (and,
// when a limit is given, no larger than it); for readers that open it themselves (libpng,
// zlib's gzopen, LibTorch's archive reader). Never opens it.
inline void require_regular_file(const std::string& path, const std::string& subject,
                                 const SizeLimit* limit = nullptr) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw Error(subject + " " + quoted(path) + ": cannot open: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    throw Error(subject + " " + quoted(path) + ": " + file_kind(st.st_mode) + ", expected a regular file");
  if (limit && static_cast<std::uint64_t>(st.st_size) > limit->max_bytes)
    throw Error(subject + " " + quoted(path) + ": " + too_big(static_cast<std::uint64_t>(st.st_size), *limit));
}

// The whole of `path` as bytes (std::string or std::vector<std::uint8_t>). Throws Error
// "`subject` "path": ..." when it cannot be opened or read, is not a regular file after
// symlinks, or holds more than limit.max_bytes (also if it grows past them while read).
template <typename Bytes>
Bytes read_regular_file(const std::string& path, const SizeLimit& limit, const std::string& subject) {
  const std::string who = subject + " " + quoted(path) + ": ";
  // stat first, so that a device or FIFO is never opened; then O_NONBLOCK and fstat of
  // what was opened, in case the path was replaced in between.
  require_regular_file(path, subject);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) throw Error(who + "cannot open: " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw Error(who + "cannot stat: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw Error(who + file_kind(st.st_mode) + ", expected a regular file");
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size > limit.max_bytes) throw Error(who + too_big(size, limit));

  // Read to end of file, at most one byte past the limit (a file that grew, or one like
  // those in /proc whose size says 0).
  Bytes bytes(static_cast<std::size_t>(size), 0);
  std::size_t used = 0;
  for (;;) {
    if (used == bytes.size()) {
      if (used > limit.max_bytes) throw Error(who + "at least " + too_big(used, limit));
      bytes.resize(used + std::min<std::size_t>(std::size_t{1} << 16, limit.max_bytes + 1 - used));
    }
    const ssize_t got = ::read(fd, &bytes[used], std::min<std::size_t>(bytes.size() - used, std::size_t{1} << 30));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw Error(who + "read failed: " + std::strerror(errno));
    if (got == 0) break;
    used += static_cast<std::size_t>(got);
  }
  bytes.resize(used);
  return bytes;
}

}  // namespace mapgate

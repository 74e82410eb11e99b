// write_file_atomic: temporary file, fsync, rename (see write_file.h).
#include "common/write_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "common/error.h"

namespace mapgate {
namespace {

std::string errno_text(int err) { return std::strerror(err); }

}  // namespace

void write_file_atomic(const std::string& path, const void* data, std::size_t size) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  auto fail = [&](const std::string& what, int err) -> Error {
    ::unlink(tmp.c_str());
    return Error("file " + quoted(path) + ": " + what + ": " + errno_text(err));
  };

  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    int err = errno;
    throw Error("file " + quoted(path) + ": cannot create temporary " + quoted(tmp) + ": " +
                errno_text(err));
  }
  const auto* p = static_cast<const std::uint8_t*>(data);
  std::size_t done = 0;
  while (done < size) {
    ssize_t n = ::write(fd, p + done, std::min(size - done, std::size_t{1} << 30));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      throw fail("write failed", err);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    throw fail("fsync failed", err);
  }
  if (::close(fd) != 0) throw fail("close failed", errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) throw fail("rename failed", errno);

  // Make the rename itself durable; best effort (some filesystems refuse fsync on dirs).
  std::string::size_type slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace mapgate

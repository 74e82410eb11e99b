// LD_PRELOAD library for the killed-run test (tests/e2e/test_kill_resume.cpp): it kills
// its process with SIGKILL at a chosen moment of a checkpoint write, which random
// timing alone hits too rarely. MAPGATE_KILL_AT selects the moment:
//   write:N   in the N-th write() to a checkpoint temporary, after half of its bytes
//   rename:N  just before the N-th temporary is renamed over checkpoint.pt
// Every other call passes straight to the C library.
#include <dlfcn.h>
#include <signal.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

bool armed(const char* kind, int& count) {
  const char* spec = std::getenv("MAPGATE_KILL_AT");
  const std::size_t n = std::strlen(kind);
  if (!spec || std::strncmp(spec, kind, n) != 0 || spec[n] != ':') return false;
  return ++count == std::atoi(spec + n + 1);
}

bool is_checkpoint_temporary(int fd) {
  char link[64], target[PATH_MAX];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const ssize_t len = ::readlink(link, target, sizeof target - 1);
  if (len <= 0) return false;
  target[len] = '\0';
  return std::strstr(target, "checkpoint.pt.tmp.") != nullptr;
}

bool ends_with(const char* text, const char* suffix) {
  const std::size_t a = std::strlen(text), b = std::strlen(suffix);
  return a >= b && std::strcmp(text + a - b, suffix) == 0;
}

}  // namespace

extern "C" ssize_t write(int fd, const void* data, size_t size) {
  using Write = ssize_t (*)(int, const void*, size_t);
  static const Write real = reinterpret_cast<Write>(dlsym(RTLD_NEXT, "write"));
  static int writes = 0;
  if (is_checkpoint_temporary(fd) && armed("write", writes)) {
    real(fd, data, size / 2);
    ::kill(::getpid(), SIGKILL);
  }
  return real(fd, data, size);
}

extern "C" int rename(const char* from, const char* to) {
  using Rename = int (*)(const char*, const char*);
  static const Rename real = reinterpret_cast<Rename>(dlsym(RTLD_NEXT, "rename"));
  static int renames = 0;
  if (ends_with(to, "/checkpoint.pt") && armed("rename", renames)) ::kill(::getpid(), SIGKILL);
  return real(from, to);
}

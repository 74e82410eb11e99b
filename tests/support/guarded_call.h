// Runs a reader on a hostile file (a FIFO, /dev/zero, a gzip bomb, a header nested a
// million levels deep) in a child process, so that a regression fails one test instead
// of hanging, exhausting or crashing the whole run: the child gets `seconds` of wall
// time (alarm) and, outside AddressSanitizer builds, 2 GiB of address space. For the
// hostile-file tests of tests/unit/data and tests/engine. Header-only, POSIX.
#pragma once

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/error.h"

#if defined(__SANITIZE_ADDRESS__)
#define MAPGATE_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MAPGATE_TEST_ASAN 1
#endif
#endif

namespace mapgate::test {

// How the call ended, and its message (what() for an exception).
struct GuardedResult {
  enum Kind { kError, kOtherException, kReturned, kKilled } kind;
  std::string message;
};

inline GuardedResult guarded_call(const std::function<void()>& fn, unsigned seconds = 20) {
  int pipe_fd[2];
  if (::pipe(pipe_fd) != 0) return {GuardedResult::kKilled, "pipe() failed"};
  const pid_t pid = ::fork();
  if (pid < 0) return {GuardedResult::kKilled, "fork() failed"};
  if (pid == 0) {  // child: no gtest calls, only _exit
    ::close(pipe_fd[0]);
    ::alarm(seconds);
#ifndef MAPGATE_TEST_ASAN
    const rlimit as{rlim_t{2} << 30, rlim_t{2} << 30};
    ::setrlimit(RLIMIT_AS, &as);
#endif
    int code = GuardedResult::kReturned;
    std::string msg;
    try {
      fn();
    } catch (const Error& e) {
      code = GuardedResult::kError;
      msg = e.what();
    } catch (const std::exception& e) {
      code = GuardedResult::kOtherException;
      msg = e.what();
    }
    for (std::size_t done = 0; done < msg.size();) {
      const ssize_t n = ::write(pipe_fd[1], msg.data() + done, msg.size() - done);
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    ::_exit(code);
  }
  ::close(pipe_fd[1]);
  std::string msg;
  char buf[4096];
  for (ssize_t n; (n = ::read(pipe_fd[0], buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    msg.append(buf, static_cast<std::size_t>(n));
  }
  ::close(pipe_fd[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return {GuardedResult::kKilled, "killed by signal " + std::to_string(sig) + " (" + strsignal(sig) +
                                        (sig == SIGALRM ? ": still running after the guard's time, a hang?" : "") +
                                        ")"};
  }
  return {static_cast<GuardedResult::Kind>(WEXITSTATUS(status)), msg};
}

// Expects `fn` to throw mapgate::Error, one line, containing every part.
inline void expect_guarded_error(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  const GuardedResult r = guarded_call(fn);
  ASSERT_EQ(r.kind, GuardedResult::kError) << "expected mapgate::Error; got kind " << r.kind << ": " << r.message;
  EXPECT_EQ(r.message.find('\n'), std::string::npos) << "message is not one line: " << r.message;
  for (const std::string& p : parts)
    EXPECT_NE(r.message.find(p), std::string::npos) << "missing \"" << p << "\" in: " << r.message;
}

}  // namespace mapgate::test

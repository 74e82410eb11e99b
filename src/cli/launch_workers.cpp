// Local launcher of data-parallel workers; see launch_workers.h.
#include "cli/launch_workers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "common/error.h"

namespace mapgate {
namespace {

std::vector<pid_t> g_workers;  // for the signal handler

void pass_signal_on(int sig) {
  for (const pid_t pid : g_workers)
    if (pid > 0) ::kill(pid, sig);
}

// SIGINT and SIGTERM go on to the workers while it lives.
class ForwardSignals {
 public:
  ForwardSignals() {
    struct sigaction forward{};
    forward.sa_handler = pass_signal_on;
    ::sigaction(SIGINT, &forward, &old_int_);
    ::sigaction(SIGTERM, &forward, &old_term_);
  }
  ~ForwardSignals() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
  }
  ForwardSignals(const ForwardSignals&) = delete;
  ForwardSignals& operator=(const ForwardSignals&) = delete;

 private:
  struct sigaction old_int_{}, old_term_{};
};

// This process's command line without --nproc N / --nproc=N.
std::vector<std::string> own_arguments_without_nproc() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (all.empty()) throw Error("--nproc: cannot read this process's command line from /proc/self/cmdline");
  std::vector<std::string> args;
  for (std::size_t begin = 0; begin < all.size();) {
    const std::size_t end = all.find('\0', begin);
    args.push_back(all.substr(begin, end - begin));
    begin = end == std::string::npos ? all.size() : end + 1;
  }
  std::vector<std::string> kept;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--nproc") {
      ++i;  // and its value
      continue;
    }
    if (args[i].rfind("--nproc=", 0) == 0) continue;
    kept.push_back(args[i]);
  }
  return kept;
}

// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's choice), as torchrun does.
int free_local_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error(std::string("--nproc: socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok) throw Error(std::string("--nproc: finding a free port on 127.0.0.1: ") + std::strerror(err));
  return ntohs(addr.sin_port);
}

pid_t start_worker(const std::vector<std::string>& args, int rank, int nproc, int port) {
  const pid_t pid = ::fork();
  if (pid < 0) throw Error(std::string("--nproc: fork: ") + std::strerror(errno));
  if (pid > 0) return pid;
  const std::string r = std::to_string(rank), n = std::to_string(nproc), p = std::to_string(port);
  ::setenv("RANK", r.c_str(), 1);
  ::setenv("LOCAL_RANK", r.c_str(), 1);
  ::setenv("WORLD_SIZE", n.c_str(), 1);
  ::setenv("LOCAL_WORLD_SIZE", n.c_str(), 1);
  ::setenv("MASTER_ADDR", "127.0.0.1", 1);
  ::setenv("MASTER_PORT", p.c_str(), 1);
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execv("/proc/self/exe", argv.data());
  const std::string message = "mapgate: --nproc: starting rank " + r + ": " + std::strerror(errno) + "\n";
  (void)!::write(STDERR_FILENO, message.data(), message.size());
  ::_exit(127);
}

std::string describe(int status) {
  if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status));
  return "exited with status " + std::to_string(WEXITSTATUS(status));
}

struct Failure {
  int rank = -1;  // -1: every worker succeeded
  int status = 0;
};

// Waits for every worker. After the first failure the others get kGrace to exit by
// themselves (a rank that fails usually takes the others down at once, and its own exit
// status is the one worth reporting), then SIGTERM. Reported: the first worker to exit
// with a usage error (status 2: the cause, not an echo of it), else the first to fail.
Failure wait_for_workers(int nproc) {
  constexpr auto kGrace = std::chrono::seconds(3);
  Failure first, usage;
  std::chrono::steady_clock::time_point stop_others_at{};
  bool stopped = false;
  for (int running = nproc; running > 0;) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid < 0 && errno != EINTR) break;
    if (pid <= 0) {
      if (first.rank >= 0 && !stopped && std::chrono::steady_clock::now() >= stop_others_at) {
        pass_signal_on(SIGTERM);  // the others cannot finish without the failed one
        stopped = true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    for (int rank = 0; rank < nproc; ++rank) {
      if (g_workers[static_cast<std::size_t>(rank)] != pid) continue;
      g_workers[static_cast<std::size_t>(rank)] = 0;
      --running;
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0) continue;
      if (first.rank < 0) {
        first = {rank, status};
        stop_others_at = std::chrono::steady_clock::now() + kGrace;
      }
      if (usage.rank < 0 && WIFEXITED(status) && WEXITSTATUS(status) == 2) usage = {rank, status};
    }
  }
  return usage.rank >= 0 ? usage : first;
}

}  // namespace

void launch_workers(int nproc) {
  const std::vector<std::string> args = own_arguments_without_nproc();
  const int port = free_local_port();
  g_workers.assign(static_cast<std::size_t>(nproc), 0);
  const ForwardSignals forwarding;
  try {
    for (int rank = 0; rank < nproc; ++rank) g_workers[static_cast<std::size_t>(rank)] = start_worker(args, rank, nproc, port);
  } catch (const Error&) {  // fork failed: the workers already started cannot finish alone
    pass_signal_on(SIGTERM);
    for (const pid_t pid : g_workers)
      if (pid > 0) ::waitpid(pid, nullptr, 0);
    throw;
  }
  const Failure failure = wait_for_workers(nproc);
  if (failure.rank < 0) return;
  const std::string message = "--nproc " + std::to_string(nproc) + ": rank " + std::to_string(failure.rank) + " " +
                              describe(failure.status) + "; the other ranks were stopped";
  if (WIFEXITED(failure.status) && WEXITSTATUS(failure.status) == 2) throw UsageError(message);
  throw Error(message);
}

}  // namespace mapgate

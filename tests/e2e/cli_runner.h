// Runs the built `mapgate` binary (MAPGATE_BINARY) in a shell for the CLI tests,
// capturing its exit code, stdout and stderr through files in a scratch directory.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "synthetic_data.h"

extern char** environ;

namespace mapgate::test {

struct CliResult {
  int exit_code = -1;
  std::string out, err;
  // For failure messages.
  std::string describe() const {
    return "exit " + std::to_string(exit_code) + "\n--- stdout\n" + out + "--- stderr\n" + err;
  }
};

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs `mapgate ARGS` (with `env` prepended, e.g. "MAPGATE_DATA=/x").
inline CliResult run_mapgate(const ScratchDir& scratch, const std::string& args,
                             const std::string& env = "") {
  static int n = 0;
  const std::string out = scratch / ("stdout_" + std::to_string(n));
  const std::string err = scratch / ("stderr_" + std::to_string(n++));
  const std::string command = (env.empty() ? "" : env + " ") + shell_quote(MAPGATE_BINARY) + " " + args +
                              " >" + shell_quote(out) + " 2>" + shell_quote(err) + " </dev/null";
  const int status = std::system(command.c_str());
  CliResult r;
  r.exit_code = (status != -1 && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

// Starts `mapgate ARGS` in the background with extra environment entries; output goes to `log`.
inline pid_t spawn_mapgate(const std::vector<std::string>& args, const std::vector<std::string>& env,
                           const std::string& log) {
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
  if (!freopen(log.c_str(), "a", stdout) || !freopen(log.c_str(), "a", stderr)) ::_exit(126);
  std::vector<char*> argv{const_cast<char*>(MAPGATE_BINARY)};
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execve(MAPGATE_BINARY, argv.data(), environ);
  ::_exit(127);
}

inline int wait_status(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
  }
  return status;
}

}  // namespace mapgate::test

// Runs the built `mapgate` binary (MAPGATE_BINARY) in a shell for the CLI tests,
// capturing its exit code, stdout and stderr through files in a scratch directory.
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "synthetic_data.h"

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

}  // namespace mapgate::test

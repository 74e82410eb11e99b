// Default data directories (see data_dir.h). XDG_CACHE_HOME follows the XDG base
// directory rules: unset, empty or relative values fall back to ~/.cache.
#include "data/data_dir.h"

#include <cstdlib>

#include "common/error.h"
#include "data/checksums.h"
#include "data/file_io.h"

namespace mapgate {
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// True if each of the six official files is in `dir`, plain or gzipped (not checksummed).
bool cifar10_files_present(const std::string& dir) {
  for (const auto& f : cifar10_official_files())
    if (present_plain_or_gz(dir, f.name).empty()) return false;
  return true;
}

}  // namespace

std::string default_data_dir(const std::string& dataset) {
  const std::string from_env = env("MAPGATE_DATA");
  if (!from_env.empty()) return from_env;
  if (dataset == "cifar10") {
    std::string cache = env("XDG_CACHE_HOME");
    if (cache.empty() || cache[0] != '/') {  // XDG: relative values are ignored
      const std::string home = env("HOME");
      if (home.empty())
        throw Error(
            "cifar10: no default data directory (neither XDG_CACHE_HOME nor HOME "
            "is set); pass --data DIR or set MAPGATE_DATA");
      cache = home + "/.cache";
    }
    return cache + "/mapgate/cifar10";
  }
  if (dataset == "fashion-mnist") return "/usr/share/datasets/fashion-mnist";
  throw UsageError("--data: required for --dataset " + dataset +
                   " (it has no default location); or set MAPGATE_DATA");
}

std::string resolve_data_dir(const std::string& flag_value, const std::string& dataset,
                             const LogFn& log) {
  if (!flag_value.empty()) return flag_value;
  const std::string dir = default_data_dir(dataset);
  if (dataset == "cifar10" && env("MAPGATE_DATA").empty() && !cifar10_files_present(dir)) {
    if (log)
      log("no --data given and CIFAR-10 is not in the cache " + mapgate::quoted(dir) +
          " yet; fetching it there");
    fetch_cifar10(dir, log);
  }
  return dir;
}

}  // namespace mapgate

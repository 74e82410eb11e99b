// CIFAR-10 and CIFAR-100 readers for the official *binary version* (plain or .gz files).
// Must match https://www.cs.toronto.edu/~kriz/cifar.html: CIFAR-10 records are 1 label +
// 3072 pixels (R, G, B planes of 32x32, row-major); CIFAR-100 records are 1 coarse +
// 1 fine label + 3072 pixels. Every header-less record is checked; errors name the file.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/regular_file.h"
#include "data/dataset.h"

namespace mapgate {

// CIFAR-10 file names, training batches first, in the official order.
const std::vector<std::string>& cifar10_train_files();  // data_batch_1.bin .. data_batch_5.bin
const std::string& cifar10_test_file();                  // test_batch.bin
// airplane automobile bird cat deer dog frog horse ship truck.
const std::vector<std::string>& cifar10_standard_names();

// The most a file may hold, decompressed: all 60000 images of the dataset in one file
// (the official files hold 10000 or 50000 records), so that a gzip bomb, /dev/zero's
// size or a stray huge file stops there. Class-names files: 1 MiB.
SizeLimit cifar10_file_limit();
SizeLimit cifar100_file_limit();
SizeLimit class_names_file_limit();

// Called once per data file with its bare name ("data_batch_1.bin"), the path read
// (plain or .gz) and its decompressed bytes, before the records are checked; lets
// `data verify` checksum the files without reading them a second time.
using FileBytesHook = std::function<void(const std::string& name, const std::string& path,
                                         const std::vector<std::uint8_t>& bytes)>;

// Appends the records of one decompressed CIFAR-10 file (`path` for messages) to `out`,
// which must already have channels/height/width = 3/32/32 and num_classes = 10.
void append_cifar10_records(const std::vector<std::uint8_t>& bytes, const std::string& path,
                            Dataset& out);
// Same for CIFAR-100 (3074-byte records; the fine label is kept, num_classes = 100).
void append_cifar100_records(const std::vector<std::uint8_t>& bytes, const std::string& path,
                             Dataset& out);

// Both splits from `dir`. Class names from batches.meta.txt (CIFAR-10) or
// fine_label_names.txt (CIFAR-100) when present, which must then hold exactly 10 or 100
// non-empty lines; otherwise the standard names (CIFAR-10) or "0".."99" (CIFAR-100).
// Splits::kTestOnly reads the test file alone.
DatasetSplits load_cifar10(const std::string& dir, const FileBytesHook& on_file = nullptr,
                           Splits which = Splits::kTrainAndTest);
DatasetSplits load_cifar100(const std::string& dir, const FileBytesHook& on_file = nullptr,
                            Splits which = Splits::kTrainAndTest);

}  // namespace mapgate

// libFuzzer target: one CIFAR file's bytes through the path load_cifar10 takes
// (decode_file_bytes: gunzip if 1f 8b, then append_cifar10_records), and the same bytes
// as CIFAR-100. Only mapgate::Error may leave the reader; a reader that returns must
// have appended exactly size / record whole records with in-range labels.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "common/error.h"
#include "data/cifar.h"
#include "data/file_io.h"

namespace {

constexpr std::size_t kPixels = 3 * 32 * 32;

mapgate::Dataset empty_dataset(int num_classes) {
  mapgate::Dataset d;
  d.channels = 3;
  d.height = 32;
  d.width = 32;
  d.num_classes = num_classes;
  return d;
}

// A returned dataset must hold one label and 3072 pixels per record of the input.
void check(const mapgate::Dataset& d, std::size_t bytes, std::size_t record) {
  const std::size_t n = bytes / record;
  if (bytes % record != 0 || d.labels.size() != n || d.images.size() != n * kPixels) std::abort();
  for (std::uint8_t label : d.labels)
    if (label >= d.num_classes) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint8_t> bytes;
  try {
    bytes = mapgate::decode_file_bytes(std::vector<std::uint8_t>(data, data + size), "fuzz.bin",
                                        mapgate::cifar100_file_limit());  // the larger record
  } catch (const mapgate::Error&) {
    return 0;
  }
  mapgate::Dataset cifar10 = empty_dataset(/*num_classes=*/10);
  try {
    mapgate::append_cifar10_records(bytes, "fuzz.bin", cifar10);
    check(cifar10, bytes.size(), /*record=*/1 + kPixels);
  } catch (const mapgate::Error&) {
    if (!cifar10.labels.empty() || !cifar10.images.empty()) std::abort();  // must stay unchanged
  }
  mapgate::Dataset cifar100 = empty_dataset(/*num_classes=*/100);
  try {
    mapgate::append_cifar100_records(bytes, "fuzz.bin", cifar100);
    check(cifar100, bytes.size(), /*record=*/2 + kPixels);
  } catch (const mapgate::Error&) {
    if (!cifar100.labels.empty() || !cifar100.images.empty()) std::abort();
  }
  return 0;
}

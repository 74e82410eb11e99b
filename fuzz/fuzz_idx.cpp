// libFuzzer target: one IDX file's bytes through the path load_idx_dataset takes
// (decode_file_bytes: gunzip if 1f 8b), then parsed both as an images and as a labels
// file. Only mapgate::Error may leave the reader; what it returns must match the header.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "common/error.h"
#include "data/file_io.h"
#include "data/idx.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint8_t> bytes;
  try {
    bytes = mapgate::decode_file_bytes(std::vector<std::uint8_t>(data, data + size), "fuzz-idx",
                                        mapgate::idx_images_file_limit());
  } catch (const mapgate::Error&) {
    return 0;
  }
  try {
    std::vector<std::uint8_t> pixels;
    const std::size_t n = mapgate::parse_idx_images(bytes, "fuzz-idx", pixels);
    // 16-byte header, then n images of 28x28.
    if (n == 0 || pixels.size() != n * 28 * 28 || bytes.size() != 16 + pixels.size()) std::abort();
  } catch (const mapgate::Error&) {
  }
  try {
    const std::vector<std::uint8_t> labels = mapgate::parse_idx_labels(bytes, "fuzz-idx", /*num_classes=*/10);
    if (labels.empty() || bytes.size() != 8 + labels.size()) std::abort();
    for (std::uint8_t label : labels)
      if (label >= 10) std::abort();
  } catch (const mapgate::Error&) {
  }
  return 0;
}

// libFuzzer target: decode_file_bytes, the gunzip every reader's .gz file goes through
// (src/data/file_io.cpp: zlib, all members, truncation is an error). Only mapgate::Error
// may escape; input without the gzip magic must come back unchanged, and no output may
// pass the limit.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "common/error.h"
#include "data/file_io.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::uint8_t> raw(data, data + size);
  // Small, so that the limit's check is reached too (a stream inflating past it).
  const mapgate::SizeLimit limit{1 << 20, "the fuzz target takes"};
  try {
    const std::vector<std::uint8_t> out = mapgate::decode_file_bytes(raw, "fuzz.gz", limit);
    const bool gzip = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    if (!gzip && out != raw) std::abort();
    // Deflate cannot expand more than 1032:1, so a larger result is a decoder bug.
    if (gzip && out.size() > size * 1032) std::abort();
    if (out.size() > limit.max_bytes) std::abort();
  } catch (const mapgate::Error&) {
  }
  return 0;
}

// libFuzzer target: decode_file_bytes, the gunzip every reader's .gz file goes through
// (src/data/file_io.cpp: zlib, all members, truncation is an error). Only mapgate::Error
// may escape; input without the gzip magic must come back unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "common/error.h"
#include "data/file_io.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::uint8_t> raw(data, data + size);
  try {
    const std::vector<std::uint8_t> out = mapgate::decode_file_bytes(raw, "fuzz.gz");
    const bool gzip = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    if (!gzip && out != raw) std::abort();
    // Deflate cannot expand more than 1032:1, so a larger result is a decoder bug.
    if (gzip && out.size() > size * 1032) std::abort();
  } catch (const mapgate::Error&) {
  }
  return 0;
}

// Bytes the data-layer tests build files from: CIFAR-10 records with a known pattern and
// one gzip member of given bytes (zlib). Header-only.
#pragma once

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <vector>

namespace mapgate::test {

// n CIFAR-10 records: label i % 10, pixel c of record i = (i*7 + c) % 256.
inline std::vector<std::uint8_t> cifar10_records(int n = 10) {
  std::vector<std::uint8_t> b;
  for (int i = 0; i < n; ++i) {
    b.push_back(static_cast<std::uint8_t>(i % 10));
    for (int c = 0; c < 3072; ++c) b.push_back(static_cast<std::uint8_t>((i * 7 + c) % 256));
  }
  return b;
}

// One gzip member holding `data`, deflated at `level` (1-9).
inline std::vector<std::uint8_t> gzip_member(const std::vector<std::uint8_t>& data, int level) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY), Z_OK);
  std::vector<std::uint8_t> out(deflateBound(&zs, data.size()) + 64);
  zs.next_in = const_cast<Bytef*>(data.data());
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

}  // namespace mapgate::test

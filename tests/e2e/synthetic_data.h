// Test helpers for the end-to-end suites: a learnable synthetic dataset built in memory
// (STYLE.md: "a few hundred learnable synthetic images"), a tiny CIFAR-10-format
// directory for CLI runs, and a scratch directory under ::testing::TempDir() that is
// unique per test and removed afterwards.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "../support/files.h"
#include "data/dataset.h"

namespace mapgate::test {

// n images of 3 x size x size, 4 classes: the class is the quadrant holding a bright
// blob (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right); every pixel carries
// uniform noise. Labels cycle 0,1,2,3 so any prefix is balanced. Deterministic in `seed`
// (raw mt19937_64 draws, no std distributions, so every standard library agrees).
// Horizontal flips swap classes 0<->1 and 2<->3: train on it with augment = false.
inline Dataset make_quadrant_blobs(std::size_t n, int size, std::uint64_t seed) {
  Dataset d;
  d.name = "quadrant-blobs";
  d.channels = 3;
  d.height = d.width = size;
  d.num_classes = 4;
  d.class_names = {"top-left", "top-right", "bottom-left", "bottom-right"};
  d.images.resize(n * d.image_bytes());
  d.labels.resize(n);
  std::mt19937_64 rng(seed);
  auto draw = [&rng](int k) { return static_cast<int>(rng() % static_cast<std::uint64_t>(k)); };
  const int half = size / 2;
  const int radius = std::max(1, size / 8);
  for (std::size_t i = 0; i < n; ++i) {
    const int label = static_cast<int>(i % 4);
    d.labels[i] = static_cast<std::uint8_t>(label);
    // Blob centre anywhere inside its quadrant (the blob may touch the quadrant edge).
    const int cy = (label >= 2 ? half : 0) + draw(half);
    const int cx = (label % 2 ? half : 0) + draw(half);
    std::uint8_t* img = d.images.data() + i * d.image_bytes();
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < size; ++y)
        for (int x = 0; x < size; ++x) {
          const bool in_blob = (y - cy) * (y - cy) + (x - cx) * (x - cx) <= radius * radius;
          img[(c * size + y) * size + x] =
              static_cast<std::uint8_t>(in_blob ? 170 + draw(86) : draw(100));
        }
  }
  return d;
}

inline DatasetSplits make_quadrant_splits(std::size_t n_train, std::size_t n_test, int size,
                                          std::uint64_t seed) {
  return {make_quadrant_blobs(n_train, size, seed), make_quadrant_blobs(n_test, size, seed + 1000)};
}

// A CIFAR-10 binary directory: 5 training files of `per_batch` records and a test file
// of `test` records; record i has label i % 10 and pixel (i*7 + c) % 256 at byte c.
inline void write_cifar_fixture(const std::string& dir, int per_batch, int test) {
  std::filesystem::create_directories(dir);
  auto write = [](const std::string& path, int records, int offset) {
    std::vector<unsigned char> bytes;
    for (int r = 0; r < records; ++r) {
      const int i = offset + r;
      bytes.push_back(static_cast<unsigned char>(i % 10));
      for (int c = 0; c < 3072; ++c) bytes.push_back(static_cast<unsigned char>((i * 7 + c) % 256));
    }
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(out.good()) << path;
  };
  for (int b = 1; b <= 5; ++b)
    write((std::filesystem::path(dir) / ("data_batch_" + std::to_string(b) + ".bin")).string(), per_batch, (b - 1) * per_batch);
  write((std::filesystem::path(dir) / "test_batch.bin").string(), test, 0);
}

}  // namespace mapgate::test

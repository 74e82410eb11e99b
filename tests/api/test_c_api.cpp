// The C interface (include/mapgate/mapgate.h) through the shared library, on tiny weight
// files written here: statuses and messages for bad files and arguments, results equal to
// the engine's own (logits, masks, MACs), tau, mode and threads; and the C++ wrapper.
#include <cmath>
#include <cstdint>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "engine/engine.h"
#include "mapgate/mapgate.hpp"

namespace mapgate {
namespace {

DenseNetConfig tiny() {
  DenseNetConfig c;
  c.depth = 10;  // 2 layers per block
  c.growth = 4;
  c.num_classes = 5;
  c.in_channels = 3;
  c.image_size = 9;  // 9 -> 4 -> 2
  c.gated = true;
  c.threshold = 0.5;
  return c;
}

constexpr int kBatch = 3;
constexpr int kPixels = 3 * 9 * 9;

std::string temp_path(const std::string& name) { return ::testing::TempDir() + "mapgate_api_" + name + ".bin"; }

// One line, containing `substring`.
void expect_message(const std::string& substring) {
  const std::string message = mapgate_last_error();
  EXPECT_NE(message.find(substring), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

class CApi : public ::testing::Test {
 protected:
  void SetUp() override {
    weights_ = random_weights(tiny(), /*seed=*/5);
    path_ = temp_path(::testing::UnitTest::GetInstance()->current_test_info()->name());
    write_weights(path_, weights_);
    ASSERT_EQ(mapgate_load(path_.c_str(), &engine_), MAPGATE_OK) << mapgate_last_error();
    pixels_.resize(kBatch * kPixels);
    for (std::size_t i = 0; i < pixels_.size(); ++i) pixels_[i] = static_cast<std::uint8_t>((i * 7 + i / 13) % 256);
    images_.resize(pixels_.size());
    for (std::size_t i = 0; i < pixels_.size(); ++i) {
      const int c = static_cast<int>(i / 81 % 3);
      images_[i] = (static_cast<float>(pixels_[i]) / 255.0f - weights_.mean[c]) / weights_.std[c];
    }
  }
  void TearDown() override { mapgate_free(engine_); }

  // The engine's own answer for images_, in `mode`.
  void expect_engine_result(EngineMode mode, const std::vector<float>& logits, const std::vector<std::uint8_t>& masks,
                            const std::vector<long long>& macs) {
    EngineOptions options;
    options.mode = mode;
    Engine engine(weights_, options);
    std::vector<float> want(kBatch * 5);
    std::vector<EngineStats> stats(kBatch);
    engine.forward_batch(images_.data(), kBatch, want.data(), stats.data());
    EXPECT_EQ(logits, want);
    for (int i = 0; i < kBatch; ++i) {
      EXPECT_EQ(std::vector<std::uint8_t>(masks.begin() + i * 24, masks.begin() + (i + 1) * 24), stats[i].masks);
      EXPECT_EQ(macs[i], stats[i].macs);
    }
  }

  Weights weights_;
  std::string path_;
  mapgate_engine* engine_ = nullptr;
  std::vector<std::uint8_t> pixels_;
  std::vector<float> images_;
  std::vector<float> logits_ = std::vector<float>(kBatch * 5, NAN);  // NaN: an unwritten logit cannot pass
  std::vector<std::uint8_t> masks_ = std::vector<std::uint8_t>(kBatch * 24, 7);
  std::vector<long long> macs_ = std::vector<long long>(kBatch, -1);
};

TEST(CApiLoad, MissingFileNamesIt) {
  const std::string path = temp_path("does_not_exist");
  mapgate_engine* engine = reinterpret_cast<mapgate_engine*>(&engine);  // must be reset to NULL
  EXPECT_EQ(mapgate_load(path.c_str(), &engine), MAPGATE_BAD_FILE);
  EXPECT_EQ(engine, nullptr);
  expect_message("\"" + path + "\": cannot open");
}

TEST(CApiLoad, MalformedFileNamesItAndTheRule) {
  const std::string path = temp_path("bad_magic");
  std::ofstream(path, std::ios::binary) << "NOTMAPGATE and some more bytes";
  mapgate_engine* engine = nullptr;
  EXPECT_EQ(mapgate_load(path.c_str(), &engine), MAPGATE_BAD_FILE);
  EXPECT_EQ(engine, nullptr);
  expect_message("\"" + path + "\"");
  expect_message("magic");
}

TEST(CApiLoad, NullArguments) {
  mapgate_engine* engine = nullptr;
  EXPECT_EQ(mapgate_load(nullptr, &engine), MAPGATE_INVALID_ARGUMENT);
  expect_message("mapgate_load: path is NULL");
  EXPECT_EQ(mapgate_load("x.bin", nullptr), MAPGATE_INVALID_ARGUMENT);
  expect_message("mapgate_load: out is NULL");
  float logits[5];
  EXPECT_EQ(mapgate_run(nullptr, logits, 1, logits, nullptr, nullptr), MAPGATE_INVALID_ARGUMENT);
  expect_message("mapgate_run: engine is NULL");
  mapgate_info info;
  EXPECT_EQ(mapgate_get_info(nullptr, &info), MAPGATE_INVALID_ARGUMENT);
  mapgate_free(nullptr);
}

// The message is per thread: a failure elsewhere does not overwrite this thread's.
TEST(CApiLoad, LastErrorIsPerThread) {
  mapgate_engine* engine = nullptr;
  EXPECT_EQ(mapgate_load(nullptr, &engine), MAPGATE_INVALID_ARGUMENT);
  std::thread([] {
    mapgate_engine* other = nullptr;
    EXPECT_EQ(std::string(mapgate_last_error()), "");
    EXPECT_EQ(mapgate_load(temp_path("also_missing").c_str(), &other), MAPGATE_BAD_FILE);
  }).join();
  expect_message("path is NULL");
}

TEST_F(CApi, InfoIsTheFiles) {
  mapgate_info info;
  ASSERT_EQ(mapgate_get_info(engine_, &info), MAPGATE_OK);
  EXPECT_EQ(info.in_channels, 3);
  EXPECT_EQ(info.image_size, 9);
  EXPECT_EQ(info.num_classes, 5);
  EXPECT_EQ(info.layers, 6);
  EXPECT_EQ(info.growth, 4);
  EXPECT_EQ(info.gated, 1);
  EXPECT_EQ(info.threshold, 0.5);
  EXPECT_FALSE(std::string(mapgate_version()).empty());
}

TEST_F(CApi, RunEqualsTheEngine) {
  ASSERT_EQ(mapgate_run(engine_, images_.data(), kBatch, logits_.data(), masks_.data(), macs_.data()), MAPGATE_OK);
  expect_engine_result(EngineMode::kGated, logits_, masks_, macs_);
}

TEST_F(CApi, RunPixelsNormalisesAsTheLoader) {
  ASSERT_EQ(mapgate_run_pixels(engine_, pixels_.data(), kBatch, logits_.data(), masks_.data(), macs_.data()),
            MAPGATE_OK);
  expect_engine_result(EngineMode::kGated, logits_, masks_, macs_);
}

TEST_F(CApi, DenseModeComputesEveryMap) {
  ASSERT_EQ(mapgate_set_mode(engine_, MAPGATE_MODE_DENSE), MAPGATE_OK);
  ASSERT_EQ(mapgate_run(engine_, images_.data(), kBatch, logits_.data(), masks_.data(), macs_.data()), MAPGATE_OK);
  EXPECT_EQ(masks_, std::vector<std::uint8_t>(kBatch * 24, 1));
  expect_engine_result(EngineMode::kDense, logits_, masks_, macs_);
  EXPECT_EQ(mapgate_set_mode(engine_, 9), MAPGATE_INVALID_ARGUMENT);
  expect_message("mode 9 is unknown");
}

// p lies in [eps, 1 - eps]: tau 0 keeps every map, tau 1 none; negative restores the file's.
TEST_F(CApi, ThresholdMovesTheMasks) {
  ASSERT_EQ(mapgate_set_threshold(engine_, 0.0), MAPGATE_OK);
  ASSERT_EQ(mapgate_run(engine_, images_.data(), kBatch, nullptr, masks_.data(), macs_.data()), MAPGATE_OK);
  EXPECT_EQ(masks_, std::vector<std::uint8_t>(kBatch * 24, 1));
  const long long all_on = macs_[0];
  ASSERT_EQ(mapgate_set_threshold(engine_, 1.0), MAPGATE_OK);
  ASSERT_EQ(mapgate_run(engine_, images_.data(), kBatch, nullptr, masks_.data(), macs_.data()), MAPGATE_OK);
  EXPECT_EQ(masks_, std::vector<std::uint8_t>(kBatch * 24, 0));
  EXPECT_LT(macs_[0], all_on);
  ASSERT_EQ(mapgate_set_threshold(engine_, -1.0), MAPGATE_OK);
  mapgate_info info;
  ASSERT_EQ(mapgate_get_info(engine_, &info), MAPGATE_OK);
  EXPECT_EQ(info.threshold, 0.5);
}

TEST_F(CApi, BadThresholdThreadsAndBatch) {
  EXPECT_EQ(mapgate_set_threshold(engine_, 1.5), MAPGATE_INVALID_ARGUMENT);
  expect_message("mapgate_set_threshold: tau 1.5");
  EXPECT_EQ(mapgate_set_threshold(engine_, NAN), MAPGATE_INVALID_ARGUMENT);
  EXPECT_EQ(mapgate_set_threads(engine_, 0), MAPGATE_INVALID_ARGUMENT);
  expect_message("mapgate_set_threads: 0 threads; expected >= 1");
  EXPECT_EQ(mapgate_run(engine_, images_.data(), -1, nullptr, nullptr, nullptr), MAPGATE_INVALID_ARGUMENT);
  expect_message("mapgate_run: n -1 is negative");
  EXPECT_EQ(mapgate_run_pixels(engine_, nullptr, 2, nullptr, nullptr, nullptr), MAPGATE_INVALID_ARGUMENT);
  expect_message("mapgate_run_pixels: the input batch is NULL");
  EXPECT_EQ(mapgate_run(engine_, nullptr, 0, nullptr, nullptr, nullptr), MAPGATE_OK);  // an empty batch
}

TEST_F(CApi, TwoThreadsGiveTheSameResults) {
  ASSERT_EQ(mapgate_set_threads(engine_, 2), MAPGATE_OK);
  ASSERT_EQ(mapgate_run(engine_, images_.data(), kBatch, logits_.data(), masks_.data(), macs_.data()), MAPGATE_OK);
  expect_engine_result(EngineMode::kGated, logits_, masks_, macs_);
}

TEST_F(CApi, CppWrapperMatchesAndThrows) {
  Classifier net(path_);
  EXPECT_EQ(net.image_bytes(), static_cast<std::size_t>(kPixels));
  net.set_threads(2);
  const Classification out = net.run_pixels(pixels_.data(), kBatch);
  ASSERT_EQ(out.n, kBatch);
  expect_engine_result(EngineMode::kGated, out.logits, out.masks, out.macs);
  for (int i = 0; i < kBatch; ++i)
    for (int j = 0; j < 5; ++j) EXPECT_LE(out.logits[i * 5 + j], out.logits[i * 5 + out.label(i)]);
  try {
    Classifier missing(temp_path("missing_for_cpp"));
    ADD_FAILURE() << "expected StatusError";
  } catch (const StatusError& e) {
    EXPECT_EQ(e.status(), MAPGATE_BAD_FILE);
    EXPECT_NE(std::string(e.what()).find("missing_for_cpp"), std::string::npos) << e.what();
  }
  EXPECT_THROW(net.set_threshold(2.0), StatusError);
}

}  // namespace
}  // namespace mapgate

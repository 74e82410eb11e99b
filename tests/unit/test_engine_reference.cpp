// The engine (src/engine, no LibTorch) against the LibTorch model (docs/design.md §5, issue 4):
// random-weight dense and gated DenseNets (plain and BC) exported in memory, and a tiny
// trained checkpoint exported to a file and read back with Engine::load. In eval mode the
// engine's masks equal LibTorch's thresholded masks and its logits differ by at most 1e-4;
// under given masks too, so that a mask flipping at tau cannot hide a mismatch.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "../e2e/synthetic_data.h"
#include "common/error.h"
#include "engine/engine.h"
#include "train/engine_check.h"
#include "train/export.h"
#include "train/trained_model.h"
#include "train/trainer.h"

namespace mapgate {
namespace {

constexpr double kTol = 1e-4;

DenseNetConfig tiny(bool bc, bool gated) {
  DenseNetConfig c;
  c.depth = bc ? 16 : 10;  // 2 layers per block
  c.bc = bc;
  c.growth = 4;
  c.num_classes = 7;
  c.image_size = 13;       // odd: 13 -> 6 -> 3 through the floor pooling
  c.gated = gated;
  return c;
}

std::vector<float> random_images(const DenseNetConfig& c, int n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(static_cast<std::size_t>(n) * c.in_channels * c.image_size * c.image_size);
  for (auto& x : v) x = normal(rng);
  return v;
}

torch::Tensor as_tensor(const DenseNetConfig& c, const std::vector<float>& images, int n) {
  return torch::from_blob(const_cast<float*>(images.data()), {n, c.in_channels, c.image_size, c.image_size},
                          torch::kFloat);
}

// Logits within kTol everywhere and the same masks (gated modes), naming where not.
void expect_agree(const EngineComparison& r, const std::string& what) {
  EXPECT_LE(r.max_abs_diff, kTol) << what << ": largest difference at " << r.worst;
  EXPECT_EQ(r.mask_mismatches, 0) << what << ": first at " << r.first_mask_mismatch;
}

// The engine in `mode` against the same model in LibTorch.
EngineComparison compare_in_mode(Engine& engine, EngineMode mode, DenseNet& model, const std::vector<float>& images,
                                 int n, const std::uint8_t* masks = nullptr) {
  EngineOptions o = engine.options();
  o.mode = mode;
  engine.set_options(o);
  return compare_engine_with_libtorch(engine, model, images.data(), n, masks);
}

// The engine and LibTorch on the same gated model: threshold mode (masks and logits) and
// given random masks (logits).
void compare_gated(Engine& engine, DenseNet& model, const std::vector<float>& images, int n, const std::string& what) {
  const EngineComparison threshold = compare_in_mode(engine, EngineMode::kGated, model, images, n);
  expect_agree(threshold, what + " threshold");
  {  // LibTorch's eval forward is its thresholded gated forward
    torch::NoGradGuard no_grad;
    const auto eval = model->forward(as_tensor(engine.config(), images, n));
    const auto engine_logits = torch::from_blob(const_cast<float*>(threshold.logits.data()), eval.sizes());
    EXPECT_LE((eval - engine_logits).abs().max().item<double>(), kTol) << what << " eval forward";
  }
  const auto masks = random_layer_masks(engine.config(), n, 0.5, 77);
  expect_agree(compare_in_mode(engine, EngineMode::kGiven, model, images, n, masks.data()), what + " given masks");
}

void expect_same_weights(const Weights& a, const Weights& b) {
  EXPECT_EQ(to_json(a.config), to_json(b.config));
  EXPECT_EQ(a.mean, b.mean);
  EXPECT_EQ(a.std, b.std);
  EXPECT_DOUBLE_EQ(a.bn_eps, b.bn_eps);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& [name, t] : a.tensors) {
    ASSERT_TRUE(b.tensors.count(name)) << name;
    EXPECT_EQ(t.shape, b.tensors.at(name).shape) << name;
    EXPECT_EQ(t.data, b.tensors.at(name).data) << name;
  }
}

class EngineReference : public ::testing::TestWithParam<bool> {};  // param: BC

TEST_P(EngineReference, DenseRandomWeights) {
  const DenseNetConfig c = tiny(GetParam(), /*gated=*/false);
  const Weights w = random_weights(c, 11, 0.0);
  DenseNet model = densenet_from_weights(w);
  // LibTorch model -> export -> the same weights, bit for bit.
  const Weights exported = export_weights(model, w.config, Normalization{w.mean, w.std});
  expect_same_weights(w, exported);
  EngineOptions o;
  o.mode = EngineMode::kDense;
  Engine engine(exported, o);
  const int n = 5;
  const auto images = random_images(c, n, 3);
  expect_agree(compare_engine_with_libtorch(engine, model, images.data(), n), "dense");
}

TEST_P(EngineReference, GatedRandomWeights) {
  const DenseNetConfig c = tiny(GetParam(), /*gated=*/true);
  const Weights w = random_weights(c, 12, /*gate_bias=*/0.3);
  DenseNet model = densenet_from_weights(w);
  const Weights exported = export_weights(model, w.config, Normalization{w.mean, w.std});
  expect_same_weights(w, exported);
  Engine engine(exported);
  const int n = 6;
  const auto images = random_images(c, n, 4);
  compare_gated(engine, model, images, n, GetParam() ? "BC" : "plain");
  // The thresholded masks are neither all on nor all off, so the test has teeth.
  torch::NoGradGuard no_grad;
  GateControl control;
  const auto kept = kept_counts(model->forward_gated(as_tensor(c, images, n), control).masks);
  const auto total = kept.sum().item<std::int64_t>();
  EXPECT_GT(total, 0);
  EXPECT_LT(total, static_cast<std::int64_t>(n) * c.dense_layers() * c.growth);
}

INSTANTIATE_TEST_SUITE_P(PlainAndBC, EngineReference, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "BC" : "Plain"; });

TEST(EngineReferenceTrained, ExportedCheckpointMatchesLibTorch) {
  test::ScratchDir dir;
  const DatasetSplits data = test::make_quadrant_splits(/*n_train=*/64, /*n_test=*/12, /*size=*/12, /*seed=*/5);
  TrainConfig tc;
  tc.dataset = "quadrant-blobs";
  tc.out_dir = dir / "run";
  tc.model.depth = 10;
  tc.model.growth = 4;
  tc.model.threshold = 0.6;
  tc.epochs = 1;
  tc.batch = 16;
  tc.lr = 0.05;
  tc.threads = 1;
  tc.seed = 2;
  tc.augment = false;
  tc.gates = Gates::kReinforce;
  tc.penalty = 2.0;
  tc.gate_lr = 0.5;
  train(tc, data, nullptr);

  const std::string file = dir / "model.mgw";
  const Weights written = export_model(dir / "run", file);
  Engine engine = Engine::load(file);
  TrainedModel trained = load_trained_model(dir / "run");
  expect_same_weights(written, read_weights(file));
  EXPECT_TRUE(engine.config().gated);
  EXPECT_DOUBLE_EQ(engine.config().threshold, 0.6);
  EXPECT_EQ(engine.input_mean(), trained.normalization.mean);
  EXPECT_EQ(engine.input_std(), trained.normalization.std);

  const Dataset& test = data.test;
  const int n = static_cast<int>(test.size());
  const std::size_t floats = test.image_bytes();
  std::vector<float> images(n * floats);
  for (int i = 0; i < n; ++i) prepare_image(test, i, trained.normalization, 0, 0, false, images.data() + i * floats);
  compare_gated(engine, trained.model, images, n, "trained");

  // The dense network of the same weights: engine kDense vs LibTorch's plain DenseNet.
  DenseNet dense = densenet_from_weights(without_gates(written));
  expect_agree(compare_in_mode(engine, EngineMode::kDense, dense, images, n), "trained dense");
}

// The comparison has teeth: a logit off by one and a layer whose gates disagree are found
// and named.
TEST(EngineCheck, FindsAShiftedLogitAndDisagreeingMasks) {
  const DenseNetConfig c = tiny(/*bc=*/false, /*gated=*/true);
  Weights w = random_weights(c, 12, /*gate_bias=*/0.3);
  auto& gate_bias = w.tensors.at("gates.0.fc.bias").data;
  std::fill(gate_bias.begin(), gate_bias.end(), -100.f);  // LibTorch: layer 0 keeps nothing
  DenseNet model = densenet_from_weights(w);
  DenseNet plain = densenet_from_weights(without_gates(w));
  const int n = 4;
  const auto images = random_images(c, n, 9);
  w.tensors.at("classifier.bias").data[2] += 1.f;  // the engine's class-2 logits, one higher
  EngineOptions dense;
  dense.mode = EngineMode::kDense;
  Engine shifted(w, dense);
  const EngineComparison logits = compare_engine_with_libtorch(shifted, plain, images.data(), n);
  EXPECT_NEAR(logits.max_abs_diff, 1.0, 1e-4);
  EXPECT_NE(logits.worst.find(", class 2: engine "), std::string::npos) << logits.worst;
  EXPECT_EQ(logits.mask_mismatches, 0);
  std::fill(gate_bias.begin(), gate_bias.end(), 100.f);  // the engine: layer 0 keeps everything
  Engine gated(w);
  const EngineComparison r = compare_engine_with_libtorch(gated, model, images.data(), n);
  EXPECT_EQ(r.mask_mismatches, n);
  EXPECT_NE(r.first_mask_mismatch.find("example 0, layer 0, map 0: engine on, LibTorch off"), std::string::npos)
      << r.first_mask_mismatch;
  EXPECT_GT(r.max_abs_diff, kTol);
}

TEST(EngineReferenceTrained, ExportOfMissingModelThrows) {
  test::ScratchDir dir;
  EXPECT_THROW(export_model(dir / "nothing", dir / "out.mgw"), Error);
}

}  // namespace
}  // namespace mapgate

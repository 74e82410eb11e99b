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

// Engine logits (n, classes) vs LibTorch (n, classes): every entry within kTol; names the
// first entry that is not.
void expect_logits_near(const std::vector<float>& engine, const torch::Tensor& reference, const std::string& what) {
  const auto ref = reference.contiguous();
  ASSERT_EQ(static_cast<std::int64_t>(engine.size()), ref.numel()) << what;
  const int classes = static_cast<int>(ref.size(1));
  const float* r = ref.data_ptr<float>();
  double worst = 0;
  for (std::size_t i = 0; i < engine.size(); ++i) {
    const double d = std::fabs(double(engine[i]) - double(r[i]));
    if (!(d <= kTol)) {
      ADD_FAILURE() << what << ": first differing logit at example " << i / classes << ", class " << i % classes
                    << ": engine " << engine[i] << ", LibTorch " << r[i] << " (|diff| " << d << ")";
      return;
    }
    worst = std::max(worst, d);
  }
  EXPECT_LE(worst, kTol) << what;
}

// Engine masks (n entries of (layers, k)) vs LibTorch's per-layer (n, k) masks.
void expect_masks_equal(const std::vector<EngineStats>& stats, const std::vector<torch::Tensor>& masks,
                        int k, const std::string& what) {
  ASSERT_EQ(masks.size() * k, stats.at(0).masks.size()) << what;
  for (std::size_t i = 0; i < stats.size(); ++i)
    for (std::size_t l = 0; l < masks.size(); ++l)
      for (int j = 0; j < k; ++j) {
        const bool torch_on = masks[l][i][j].item<float>() > 0.5f;
        const bool engine_on = stats[i].masks[l * k + j] != 0;
        if (torch_on != engine_on) {
          ADD_FAILURE() << what << ": first differing mask at example " << i << ", layer " << l << ", map " << j
                        << ": engine " << engine_on << ", LibTorch " << torch_on;
          return;
        }
      }
}

std::vector<float> engine_logits(Engine& engine, const std::vector<float>& images, int n,
                                 std::vector<EngineStats>* stats = nullptr, const std::uint8_t* masks = nullptr) {
  std::vector<float> logits(static_cast<std::size_t>(n) * engine.config().num_classes);
  if (stats) stats->assign(n, {});
  engine.forward_batch(images.data(), n, logits.data(), stats ? stats->data() : nullptr, 1, masks);
  return logits;
}

// Random 0/1 masks (n, layers, k) and the same as LibTorch's per-layer (n, k) tensors.
std::vector<std::uint8_t> random_masks(const DenseNetConfig& c, int n, double keep, std::uint32_t seed,
                                       std::vector<torch::Tensor>* per_layer) {
  std::mt19937 rng(seed);
  std::bernoulli_distribution on(keep);
  const int layers = c.dense_layers(), k = c.growth;
  std::vector<std::uint8_t> m(static_cast<std::size_t>(n) * layers * k);
  for (auto& x : m) x = on(rng);
  const auto all = torch::from_blob(m.data(), {n, layers, k}, torch::kUInt8).to(torch::kFloat);
  for (int l = 0; l < layers; ++l) per_layer->push_back(all.select(1, l).contiguous());
  return m;
}

// The engine and LibTorch on the same gated model: threshold mode (masks and logits) and
// given random masks (logits).
void compare_gated(Engine& engine, DenseNet& model, const std::vector<float>& images, int n, const std::string& what) {
  torch::NoGradGuard no_grad;
  const DenseNetConfig& c = engine.config();
  const auto x = as_tensor(c, images, n);
  {
    EngineOptions o = engine.options();
    o.mode = EngineMode::kGated;
    engine.set_options(o);
    GateControl control;
    control.mode = GateMode::kThreshold;
    const auto ref = model->forward_gated(x, control);
    std::vector<EngineStats> stats;
    const auto logits = engine_logits(engine, images, n, &stats);
    expect_masks_equal(stats, ref.masks, c.growth, what + " threshold");
    expect_logits_near(logits, ref.logits, what + " threshold");
    expect_logits_near(logits, model->forward(x), what + " eval forward");
  }
  {
    EngineOptions o = engine.options();
    o.mode = EngineMode::kGiven;
    engine.set_options(o);
    GateControl control;
    control.mode = GateMode::kGiven;
    const auto masks = random_masks(c, n, 0.5, 77, &control.masks);
    const auto ref = model->forward_gated(x, control);
    std::vector<EngineStats> stats;
    const auto logits = engine_logits(engine, images, n, &stats, masks.data());
    expect_masks_equal(stats, ref.masks, c.growth, what + " given masks");
    expect_logits_near(logits, ref.logits, what + " given masks");
  }
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
  torch::NoGradGuard no_grad;
  expect_logits_near(engine_logits(engine, images, n), model->forward(as_tensor(c, images, n)), "dense");
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
  EngineOptions o;
  o.mode = EngineMode::kDense;
  engine.set_options(o);
  torch::NoGradGuard no_grad;
  expect_logits_near(engine_logits(engine, images, n), dense->forward(as_tensor(trained.config, images, n)),
                     "trained dense");
}

TEST(EngineReferenceTrained, ExportOfMissingModelThrows) {
  test::ScratchDir dir;
  EXPECT_THROW(export_model(dir / "nothing", dir / "out.mgw"), Error);
}

}  // namespace
}  // namespace mapgate

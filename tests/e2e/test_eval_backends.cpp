// evaluate() on the engine (the default) and on LibTorch give the same result: accuracy,
// per-class hits, loss (within float rounding), and for a gated model the same masks and
// MACs of every example and the same mask-shuffle accuracy. The model is small, with
// random gate weights so that masks differ between images, and BN statistics estimated
// on the data (recalibrate_batch_norm), so that every folded term matters. Also the
// per-example JSON of `mapgate eval --per-example`.
#include <gtest/gtest.h>

#include <cmath>

#include "synthetic_data.h"
#include "train/evaluate.h"

namespace mapgate {
namespace {

Normalization test_normalization() { return {{0.3f, 0.3f, 0.3f}, {0.25f, 0.25f, 0.25f}}; }

// A DenseNet-10 k=4 for the 4-class 16x16 quadrant blobs.
DenseNetConfig small_config(bool gated, bool per_layer = false, int core_maps = 0) {
  DenseNetConfig c;
  c.depth = 10;
  c.growth = 4;
  c.num_classes = 4;
  c.image_size = 16;
  c.gated = gated;
  c.gate_standardize = true;
  c.gate_per_layer = per_layer;
  c.core_maps = core_maps;
  return c;
}

DenseNet random_model(bool gated, const Dataset& data, const Normalization& norm, bool per_layer = false,
                      int core_maps = 0) {
  const DenseNetConfig c = small_config(gated, per_layer, core_maps);
  torch::manual_seed(7);
  DenseNet model(c);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->named_parameters())
      if (p.key().rfind("gates.", 0) == 0) p.value().normal_(0.0, 1.0);
  }
  recalibrate_batch_norm(model, data, norm, 2, 32);
  return model;
}

void expect_same(const EvalResult& engine, const EvalResult& libtorch) {
  EXPECT_TRUE(engine.on_engine);
  EXPECT_FALSE(libtorch.on_engine);
  EXPECT_EQ(engine.examples, libtorch.examples);
  EXPECT_EQ(engine.correct, libtorch.correct);
  EXPECT_EQ(engine.class_correct, libtorch.class_correct);
  EXPECT_EQ(engine.class_total, libtorch.class_total);
  EXPECT_NEAR(engine.loss(), libtorch.loss(), 1e-5 * std::max(1.0, libtorch.loss()));
  EXPECT_EQ(engine.labels, libtorch.labels);
  EXPECT_EQ(engine.predictions, libtorch.predictions);
  EXPECT_EQ(engine.macs, libtorch.macs);
  EXPECT_EQ(engine.masks.bits, libtorch.masks.bits);
  ASSERT_EQ(engine.layer_active.size(), libtorch.layer_active.size());
  for (std::size_t l = 0; l < engine.layer_active.size(); ++l)
    EXPECT_DOUBLE_EQ(engine.layer_active[l], libtorch.layer_active[l]) << "gate " << l;
}

TEST(EvalBackends, GatedModelGivesTheSameResultOnBoth) {
  const Dataset data = test::make_quadrant_blobs(200, 16, 3);
  const Normalization norm = test_normalization();
  DenseNet model = random_model(true, data, norm);
  const EvalResult engine = evaluate(model, data, norm, 64);
  const EvalResult libtorch = evaluate(model, data, norm, 64, EvalBackend::kLibTorch);
  expect_same(engine, libtorch);
  // The comparison means something: masks differ between images, some maps are off.
  const auto [low, high] = std::minmax_element(engine.macs.begin(), engine.macs.end());
  EXPECT_LT(*low, *high);
  EXPECT_LT(*high, engine.macs_dense);
  EXPECT_EQ(mask_shuffle_accuracy(model, data, norm, engine), mask_shuffle_accuracy(model, data, norm, libtorch));
}

// --gate-unit layer: the engine runs the per-layer gate written as k equal rows, and
// skips whole layers exactly where LibTorch does.
TEST(EvalBackends, PerLayerGatedModelGivesTheSameResultOnBoth) {
  const Dataset data = test::make_quadrant_blobs(200, 16, 5);
  const Normalization norm = test_normalization();
  DenseNet model = random_model(true, data, norm, /*per_layer=*/true);
  const EvalResult engine = evaluate(model, data, norm, 64);
  const EvalResult libtorch = evaluate(model, data, norm, 64, EvalBackend::kLibTorch);
  expect_same(engine, libtorch);
  const std::size_t k = model->config().growth, maps = engine.masks.maps;
  std::size_t layers_off = 0;
  for (std::size_t i = 0; i < engine.examples; ++i)
    for (std::size_t j = 0; j < maps; ++j) {
      EXPECT_EQ(engine.masks.bits[i * maps + j], engine.masks.bits[i * maps + j / k * k]) << "image " << i;
      if (j % k == 0 && !engine.masks.bits[i * maps + j]) ++layers_off;
    }
  EXPECT_GT(layers_off, 0u);  // whole layers were skipped
  const auto [low, high] = std::minmax_element(engine.macs.begin(), engine.macs.end());
  EXPECT_LT(*low, *high);
}

// --core-maps: the engine runs core maps as gates written always on (W = 0, a large bias)
// and computes them for every image, as LibTorch does; the other maps stay per image.
TEST(EvalBackends, CoreMapsModelGivesTheSameResultOnBoth) {
  const Dataset data = test::make_quadrant_blobs(200, 16, 8);
  const Normalization norm = test_normalization();
  DenseNet model = random_model(true, data, norm, /*per_layer=*/false, /*core_maps=*/2);
  const EvalResult engine = evaluate(model, data, norm, 64);
  const EvalResult libtorch = evaluate(model, data, norm, 64, EvalBackend::kLibTorch);
  expect_same(engine, libtorch);
  const std::size_t k = model->config().growth, maps = engine.masks.maps;
  std::size_t gated_off = 0;
  for (std::size_t i = 0; i < engine.examples; ++i)
    for (std::size_t j = 0; j < maps; ++j) {
      if (j % k < 2) EXPECT_TRUE(engine.masks.bits[i * maps + j]) << "image " << i << ", core map " << j;
      else gated_off += !engine.masks.bits[i * maps + j];
    }
  EXPECT_GT(gated_off, 0u);  // the comparison means something: gated maps do switch off
}

// per_example_json (`mapgate eval --json --per-example`): one entry per image in dataset
// order; the predictions give the result's hits, the masks and MACs are the result's own;
// the confidence is the top class's softmax probability, so a hit's loss is -log of it.
TEST(EvalBackends, PerExampleJsonHasEveryImage) {
  const Dataset data = test::make_quadrant_blobs(70, 16, 6);  // a short last batch of 32
  const Normalization norm = test_normalization();
  DenseNet model = random_model(true, data, norm);
  const EvalResult r = evaluate(model, data, norm, 32);
  const nlohmann::json j = per_example_json(r);
  for (const char* key : {"label", "prediction", "loss", "confidence", "macs", "mask"})
    ASSERT_EQ(j.at(key).size(), 70u) << key;
  std::size_t hits = 0;
  double loss_sum = 0;
  for (std::size_t i = 0; i < 70; ++i) {
    EXPECT_EQ(j["label"][i].get<int>(), static_cast<int>(data.labels[i])) << "image " << i;
    hits += j["prediction"][i].get<int>() == j["label"][i].get<int>();
    const double loss = j["loss"][i].get<double>();
    loss_sum += loss;
    // A wrong prediction's label has at most half the probability: its loss is at least log 2.
    EXPECT_GE(loss, j["prediction"][i] == j["label"][i] ? 0.0 : std::log(2.0)) << "image " << i;
    const double confidence = j["confidence"][i].get<double>();
    EXPECT_GE(confidence, 1.0 / data.num_classes - 1e-12) << "image " << i;
    EXPECT_LE(confidence, 1.0) << "image " << i;
    if (j["prediction"][i] == j["label"][i]) EXPECT_NEAR(loss, -std::log(confidence), 1e-9) << "image " << i;
    else EXPECT_GT(loss, -std::log(confidence)) << "image " << i;
    EXPECT_EQ(j["macs"][i].get<std::int64_t>(), r.macs[i]) << "image " << i;
    const std::string mask = j["mask"][i].get<std::string>();
    ASSERT_EQ(mask.size(), r.masks.maps) << "image " << i;
    for (std::size_t m = 0; m < mask.size(); ++m)
      EXPECT_EQ(mask[m], r.masks.at(i, m) ? '1' : '0') << "image " << i << ", map " << m;
  }
  EXPECT_EQ(hits, r.correct);
  EXPECT_NEAR(loss_sum / 70, r.loss(), 1e-9);  // the mean of the per-image losses

  DenseNet dense = random_model(false, data, norm);
  const nlohmann::json d = per_example_json(evaluate(dense, data, norm, 32));
  EXPECT_EQ(d.at("prediction").size(), 70u);
  EXPECT_FALSE(d.contains("macs"));
  EXPECT_FALSE(d.contains("mask"));
}

TEST(EvalBackends, DenseModelGivesTheSameResultOnBoth) {
  const Dataset data = test::make_quadrant_blobs(130, 16, 4);  // a short last batch
  const Normalization norm = test_normalization();
  DenseNet model = random_model(false, data, norm);
  expect_same(evaluate(model, data, norm, 64), evaluate(model, data, norm, 64, EvalBackend::kLibTorch));
}

TEST(EvalBackends, SampledInferenceStaysOnLibTorch) {
  const Dataset data = test::make_quadrant_blobs(20, 16, 5);
  const Normalization norm = test_normalization();
  DenseNetConfig c = small_config(true);
  c.sampled_inference = true;
  DenseNet model(c);
  EXPECT_FALSE(engine_evaluates(model));
  EXPECT_FALSE(evaluate(model, data, norm).on_engine);
}

}  // namespace
}  // namespace mapgate

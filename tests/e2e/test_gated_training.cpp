// Gated training end to end on in-memory synthetic data (docs/design.md §3-4): a larger
// penalty keeps fewer maps; checkpoints carry the gates and their settings, and eval of
// a gated run reproduces its metrics.jsonl; --init starts from dense weights; --resume
// of a gated run continues exactly; --gates gumbel is accepted, bad gate flags are not.
#include <algorithm>
#include <fstream>
#include <functional>

#include <gtest/gtest.h>

#include "common/error.h"
#include "run_files.h"
#include "synthetic_data.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/gate_setup.h"
#include "train/trained_model.h"
#include "train/trainer.h"

namespace mapgate {
namespace {

using test::read_metrics;
namespace fs = std::filesystem;

const DatasetSplits& blobs() {
  static const DatasetSplits data = test::make_quadrant_splits(/*n_train=*/192, /*n_test=*/48,
                                                               /*size=*/12, /*seed=*/9);
  return data;
}

TrainConfig gated_config(const std::string& out_dir, double penalty) {
  TrainConfig c;
  c.dataset = "quadrant-blobs";
  c.out_dir = out_dir;
  c.model.depth = 10;
  c.model.growth = 4;
  c.epochs = 3;
  c.batch = 16;
  c.lr = 0.05;
  c.threads = 1;
  c.seed = 4;
  c.augment = false;   // flips would swap the blob classes
  c.gates = Gates::kReinforce;
  c.penalty = penalty;
  c.gate_lr = 0.2;     // move the gates within a few dozen steps
  c.baseline = Baseline::kGreedy;
  return c;
}

TEST(GatedTraining, LargerPenaltyKeepsFewerMaps) {
  test::ScratchDir dir;
  train(gated_config(dir / "low", /*penalty=*/0.0), blobs(), nullptr);
  train(gated_config(dir / "high", /*penalty=*/4.0), blobs(), nullptr);
  const auto low = read_metrics(dir / "low").back();
  const auto high = read_metrics(dir / "high").back();
  for (const auto& m : {low, high})
    for (const char* key : {"train_kept_fraction", "train_macs_mean", "train_reward", "gate_entropy",
                            "test_macs_mean", "test_active_fraction", "test_per_layer_active"})
      EXPECT_TRUE(m.contains(key)) << key;
  EXPECT_LT(high["train_kept_fraction"].get<double>(), low["train_kept_fraction"].get<double>() - 0.1);
  EXPECT_LT(high["test_macs_mean"].get<double>(), low["test_macs_mean"].get<double>());
}

TEST(GatedTraining, CheckpointCarriesGatesAndEvalReproducesMetrics) {
  test::ScratchDir dir;
  TrainConfig c = gated_config(dir / "run", 1.0);
  c.epochs = 2;
  c.model.threshold = 0.4;
  c.model.p_clamp = 0.02;
  c.bn_recal_batches = 2;
  train(c, blobs(), nullptr);
  TrainedModel t = load_trained_model(dir / "run");
  EXPECT_TRUE(t.config.gated);
  EXPECT_DOUBLE_EQ(t.config.threshold, 0.4);
  EXPECT_DOUBLE_EQ(t.config.p_clamp, 0.02);
  bool has_gates = false;
  for (const auto& p : t.model->named_parameters())
    if (p.key().rfind("gates.", 0) == 0) has_gates = true;
  EXPECT_TRUE(has_gates);
  // The gates were trained: not the fresh bias any more.
  EXPECT_NE(t.model->named_parameters()["gates.0.fc.bias"][0].item<float>(), 3.0f);
  const EvalResult r = evaluate(t.model, blobs().test, t.normalization);
  const auto last = read_metrics(dir / "run").back();
  EXPECT_DOUBLE_EQ(r.accuracy(), last["test_accuracy"].get<double>());
  EXPECT_DOUBLE_EQ(r.macs_mean(), last["test_macs_mean"].get<double>());
  EXPECT_DOUBLE_EQ(r.active_fraction(), last["test_active_fraction"].get<double>());
  const auto config = nlohmann::json::parse(std::ifstream(dir / "run" + "/config.json"));
  EXPECT_EQ(config["gates"], "reinforce");
  EXPECT_EQ(config["penalty"], 1.0);
}

TEST(GatedTraining, ResumeContinuesExactly) {
  test::ScratchDir dir;
  TrainConfig whole = gated_config(dir / "whole", 1.0);
  whole.epochs = 2;
  whole.baseline = Baseline::kMean;  // its running state must survive the restart
  train(whole, blobs(), nullptr);
  TrainConfig part = whole;
  part.out_dir = dir / "part";
  part.stop_after = 1;
  train(part, blobs(), nullptr);
  part.stop_after = 0;
  part.resume = true;
  train(part, blobs(), nullptr);
  const auto a = read_metrics(dir / "whole").back();
  const auto b = read_metrics(dir / "part").back();
  for (const char* key : {"train_loss", "train_kept_fraction", "train_reward", "test_accuracy", "test_macs_mean"})
    EXPECT_EQ(a[key], b[key]) << key;
}

TEST(GatedTraining, InitFromDenseRunAndWarmup) {
  test::ScratchDir dir;
  TrainConfig dense = gated_config(dir / "dense", 0);
  dense.gates = Gates::kOff;
  dense.epochs = 1;
  train(dense, blobs(), nullptr);
  TrainConfig gated = gated_config(dir / "gated", 1.0);
  gated.init = dir / "dense";
  gated.epochs = 2;
  gated.warmup_epochs = 1;
  train(gated, blobs(), nullptr);
  const auto m = read_metrics(dir / "gated");
  ASSERT_EQ(m.size(), 2u);
  EXPECT_FALSE(m[0]["gated_phase"].get<bool>());
  EXPECT_DOUBLE_EQ(m[0]["train_kept_fraction"].get<double>(), 1.0);
  EXPECT_TRUE(m[1]["gated_phase"].get<bool>());
  // The warm-up epoch is tested as it trained, all on, even where its gates start off.
  TrainConfig half = gated_config(dir / "half", 1.0);
  half.epochs = 2;
  half.warmup_epochs = 1;
  const int maps = half.model.dense_layers() * half.model.growth;
  for (int j = 0; j < maps; ++j) half.init_mask.push_back(j % 2);
  train(half, blobs(), nullptr);
  const auto h = read_metrics(dir / "half");
  ASSERT_EQ(h.size(), 2u);
  EXPECT_DOUBLE_EQ(h[0]["test_active_fraction"].get<double>(), 1.0);
  EXPECT_LT(h[1]["test_active_fraction"].get<double>(), 0.9);
  // A different architecture cannot initialise it.
  TrainConfig wrong = gated_config(dir / "wrong", 1.0);
  wrong.model.growth = 6;
  wrong.init = dir / "dense";
  try {
    train(wrong, blobs(), nullptr);
    FAIL() << "growth 6 initialised from a growth-4 run";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("has shape"), std::string::npos) << e.what();
  }
}

TEST(GatedTraining, GumbelIsAcceptedAndBadFlagsAreUsageErrors) {
  test::ScratchDir dir;
  TrainConfig c = gated_config(dir / "g", 1.0);
  c.gates = Gates::kGumbel;
  EXPECT_NO_THROW(validate(c));
  c.gumbel_temperature = 0;
  EXPECT_THROW(validate(c), UsageError);
  c.gumbel_temperature = 1;
  c.target_rate = 1.5;
  EXPECT_THROW(validate(c), UsageError);
  c.target_rate = 0.5;
  c.cost = GateCost::kMacs;  // the target-rate loss counts maps
  EXPECT_THROW(validate(c), UsageError);
  c.cost = GateCost::kMaps;
  EXPECT_NO_THROW(validate(c));
}

// The flags of the method fixes and baselines: each bad value is a usage error naming it.
TEST(GatedTraining, MethodAndBaselineFlagsAreChecked) {
  test::ScratchDir dir;
  auto expect_usage = [&](const std::function<void(TrainConfig&)>& set, const std::string& flag) {
    TrainConfig c = gated_config(dir / "g", 1.0);
    set(c);
    try {
      validate(c);
      ADD_FAILURE() << flag << " accepted";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(flag), std::string::npos) << e.what();
    }
  };
  expect_usage([](TrainConfig& c) { c.gate_variance = -1; }, "--gate-variance");
  expect_usage([](TrainConfig& c) { c.cost_target = 1; }, "--cost-target");
  expect_usage([](TrainConfig& c) { c.cost_target = -0.1; }, "--cost-target");
  expect_usage(
      [](TrainConfig& c) {
        c.cost_target = 0.3;
        c.cost_gradient = CostGradient::kReinforce;
      },
      "--cost-target");
  expect_usage([](TrainConfig& c) { c.baseline = Baseline::kEngine; c.device = "cuda"; }, "--baseline engine");
  expect_usage([](TrainConfig& c) { c.baseline = Baseline::kEngine; c.gates = Gates::kGumbel; }, "--baseline engine");
  expect_usage([](TrainConfig& c) { c.gates = Gates::kRandom; c.random_keep = {0.5}; }, "--random-keep");
  expect_usage([](TrainConfig& c) { c.gates = Gates::kRandom; c.random_keep.assign(6, 1.0); }, "--random-keep");
  expect_usage([](TrainConfig& c) { c.random_keep.assign(6, 0.5); }, "--random-keep: only with --gates random");
  expect_usage([](TrainConfig& c) { c.gates = Gates::kRandom; c.model.core_maps = 2; c.random_keep.assign(6, 0.4); },
               "below the share the core keeps, --core-maps 2 of 4");
  expect_usage([](TrainConfig& c) { c.gates = Gates::kFixed; c.fixed_maps.assign(24, 1); c.model.core_maps = 1; },
               "--core-maps: only with");
  expect_usage([](TrainConfig& c) { c.gates = Gates::kFixed; c.fixed_maps.assign(3, 1); }, "--fixed-maps");
  expect_usage([](TrainConfig& c) { c.gates = Gates::kFixed; c.fixed_maps.assign(24, 2); }, "--fixed-maps 2");
  expect_usage([](TrainConfig& c) { c.init_mask.assign(23, 1); }, "--init-mask: 23 values given, 24 needed");
  expect_usage([](TrainConfig& c) { c.init_mask.assign(24, 3); }, "--init-mask 3");
  expect_usage([](TrainConfig& c) { c.gates = Gates::kGumbel; c.init_mask.assign(24, 1); }, "--init-mask: only with");
  expect_usage([](TrainConfig& c) { c.gates = Gates::kFixed; c.fixed_maps.assign(24, 1); c.gate_unit = GateUnit::kLayer; },
               "--gate-unit layer: only with");
  expect_usage([](TrainConfig& c) { c.gate_unit = GateUnit::kLayer; for (int i = 0; i < 24; ++i) c.init_mask.push_back(i % 2); },
               "--init-mask: layer 0 has maps on and off");
  TrainConfig ok = gated_config(dir / "g", 1.0);
  ok.gates = Gates::kFixed;
  ok.fixed_maps.assign(24, 1);  // depth 10: 6 gated layers x growth 4
  EXPECT_NO_THROW(validate(ok));
}

// --gates fixed trains and evaluates under exactly the given maps: every example keeps
// the same maps, and a weight file of it exists; --gates random samples at inference.
TEST(GatedTraining, FixedAndRandomBaselinesTrain) {
  test::ScratchDir dir;
  TrainConfig c = gated_config(dir / "fixed", 0.0);
  c.epochs = 1;
  c.gates = Gates::kFixed;
  for (int i = 0; i < 24; ++i) c.fixed_maps.push_back(i % 3 == 0 ? 0 : 1);
  train(c, blobs(), nullptr);
  const auto m = read_metrics(dir / "fixed").back();
  EXPECT_NEAR(m["test_active_fraction"].get<double>(), 16.0 / 24, 1e-9);
  EXPECT_EQ(m["test_input_dependence"]["distinct_masks"].get<int>(), 1);
  TrainConfig r = gated_config(dir / "random", 0.0);
  r.epochs = 1;
  r.gates = Gates::kRandom;
  r.random_keep.assign(6, 0.5);
  train(r, blobs(), nullptr);
  const auto mr = read_metrics(dir / "random").back();
  EXPECT_GT(mr["test_input_dependence"]["distinct_masks"].get<int>(), 1);
  EXPECT_NEAR(mr["test_active_fraction"].get<double>(), 0.5, 0.15);
}

// --gates random with a core: the --random-keep rate is the whole layer's, so the core
// maps are on for every image and each other map is on with (r k - K) / (k - K); a layer
// at the core's own share keeps (almost) the core alone.
TEST(GatedTraining, RandomMasksWithACoreKeepTheLayersRate) {
  TrainConfig c = gated_config("unused", 0.0);
  c.gates = Gates::kRandom;
  c.model.core_maps = 2;                             // of growth 4
  c.random_keep = {0.75, 0.75, 0.5, 0.5, 0.875, 0.875};  // others on at 0.5, 0.5, ~eps, ~eps, 0.75, 0.75
  c.model.num_classes = 4;
  c.model.in_channels = 1;
  c.model.image_size = 8;
  ASSERT_NO_THROW(validate(c));
  apply_gate_flags(c);
  torch::manual_seed(5);
  DenseNet model(c.model);
  initialise_gates(model, c);
  model->eval();
  GateControl sample;
  sample.mode = GateMode::kSample;
  torch::NoGradGuard no_grad;
  const auto out = model->forward_gated(torch::randn({4000, 1, 8, 8}), sample);
  const double others[] = {0.5, 0.5, 0.0, 0.0, 0.75, 0.75};
  for (int l = 0; l < 6; ++l) {
    const auto m = out.masks[l];
    EXPECT_TRUE(torch::equal(m.narrow(1, 0, 2), torch::ones({4000, 2}))) << "layer " << l;
    const double rate = m.narrow(1, 2, 2).mean().item<double>();
    EXPECT_NEAR(rate, std::max(others[l], c.model.p_clamp), 0.02) << "layer " << l;
    EXPECT_NEAR(m.mean().item<double>(), c.random_keep[l], 0.02) << "layer " << l;
  }
}

// --init-mask starts REINFORCE gates at a static mask: with lambda = 0 and a gate rate
// too small to move a bias of 3 in one epoch, every test image keeps exactly those maps.
TEST(GatedTraining, InitMaskStartsTheGatesAtAStaticMask) {
  test::ScratchDir dir;
  TrainConfig c = gated_config(dir / "init", 0.0);
  c.epochs = 1;
  c.gate_lr = 1e-4;
  for (int i = 0; i < 24; ++i) c.init_mask.push_back(i % 4 == 0 ? 0 : 1);
  train(c, blobs(), nullptr);
  const auto m = read_metrics(dir / "init").back();
  EXPECT_NEAR(m["test_active_fraction"].get<double>(), 18.0 / 24, 1e-9);
  EXPECT_EQ(m["test_input_dependence"]["distinct_masks"].get<int>(), 1);
  const auto on = m["test_input_dependence"]["map_on_rate"];
  for (int i = 0; i < 24; ++i) EXPECT_EQ(on[i].get<double>(), i % 4 == 0 ? 0.0 : 1.0) << "map " << i;
}

// --gates frozen keeps the --init run's gates bit for bit (unit and input included) and
// fine-tunes the weights under their thresholded masks; it needs a gated --init.
TEST(GatedTraining, FrozenGatesKeepTheInitRunsGates) {
  test::ScratchDir dir;
  TrainConfig source = gated_config(dir / "source", 0.0);
  source.epochs = 1;
  source.gate_lr = 1e-4;  // the gates stay at the mask (W about 0, b about +-3)
  source.gate_unit = GateUnit::kLayer;
  for (int i = 0; i < 24; ++i) source.init_mask.push_back(i / 4 == 2 ? 0 : 1);  // layer 2 off
  train(source, blobs(), nullptr);
  TrainConfig frozen = gated_config(dir / "frozen", 0.0);
  frozen.epochs = 1;
  frozen.gates = Gates::kFrozen;
  frozen.init = dir / "source";
  train(frozen, blobs(), nullptr);
  const TrainedModel a = load_trained_model(dir / "source"), b = load_trained_model(dir / "frozen");
  EXPECT_TRUE(b.config.gate_per_layer);
  EXPECT_EQ(b.config.gate_standardize, a.config.gate_standardize);
  auto pa = a.model->named_parameters(), pb = b.model->named_parameters();
  std::size_t gate_tensors = 0, moved = 0;
  for (const auto& p : pa) {
    const bool same = torch::equal(p.value(), pb[p.key()]);
    if (p.key().rfind("gates.", 0) == 0) {
      EXPECT_TRUE(same) << p.key() << " moved";
      ++gate_tensors;
    } else if (!same) {
      ++moved;
    }
  }
  EXPECT_EQ(gate_tensors, 12u);
  EXPECT_GT(moved, 0u);  // the weights did fine-tune
  EXPECT_NEAR(read_metrics(dir / "frozen").back()["test_active_fraction"].get<double>(), 20.0 / 24, 1e-9);
  TrainConfig no_init = gated_config(dir / "x", 0.0);
  no_init.gates = Gates::kFrozen;
  EXPECT_THROW(validate(no_init), UsageError);
}

// --gate-unit layer: the run records it (its checkpoint reloads), a per-layer --init-mask starts whole layers off,
// and every test image keeps or drops each layer's 4 maps together.
TEST(GatedTraining, PerLayerGatesSkipWholeLayers) {
  test::ScratchDir dir;
  TrainConfig c = gated_config(dir / "layer", 0.0);
  c.epochs = 1;
  c.gate_lr = 1e-4;
  c.gate_unit = GateUnit::kLayer;
  for (int i = 0; i < 24; ++i) c.init_mask.push_back(i / 4 == 1 || i / 4 == 4 ? 0 : 1);  // layers 1, 4 off
  train(c, blobs(), nullptr);
  EXPECT_TRUE(load_trained_model(dir / "layer").config.gate_per_layer);  // recorded, and reloads
  const auto m = read_metrics(dir / "layer").back();
  EXPECT_NEAR(m["test_active_fraction"].get<double>(), 16.0 / 24, 1e-9);
  const auto on = m["test_input_dependence"]["map_on_rate"];
  for (int i = 0; i < 24; ++i) EXPECT_EQ(on[i].get<double>(), i / 4 == 1 || i / 4 == 4 ? 0.0 : 1.0) << "map " << i;
}

// --core-maps: under a penalty that closes most gated maps, the core maps stay on for
// every test image; the setting is recorded and reloads; where it does not apply, it is a
// usage error naming the flag.
TEST(GatedTraining, CoreMapsStayOnUnderThePenalty) {
  test::ScratchDir dir;
  TrainConfig c = gated_config(dir / "core", /*penalty=*/4.0);
  c.model.core_maps = 1;
  train(c, blobs(), nullptr);
  EXPECT_EQ(load_trained_model(dir / "core").config.core_maps, 1);
  const auto m = read_metrics(dir / "core").back();
  const auto on = m["test_input_dependence"]["map_on_rate"];
  ASSERT_EQ(on.size(), 24u);  // 6 gated layers x growth 4
  double gated_on = 0;
  for (int i = 0; i < 24; ++i) {
    if (i % 4 == 0) EXPECT_EQ(on[i].get<double>(), 1.0) << "core map " << i;
    else gated_on += on[i].get<double>();
  }
  EXPECT_LT(gated_on / 18, 0.9);  // the penalty did close gated maps
  for (auto set : std::vector<std::function<void(TrainConfig&)>>{
           [](TrainConfig& t) { t.gates = Gates::kFixed; t.fixed_maps.assign(24, 1); },
           [](TrainConfig& t) { t.gate_unit = GateUnit::kLayer; },
           [](TrainConfig& t) { t.model.core_maps = 4; }}) {
    TrainConfig bad = gated_config(dir / "bad", 1.0);
    bad.model.core_maps = 1;
    set(bad);
    try {
      validate(bad);
      ADD_FAILURE() << "accepted";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("--core-maps"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace mapgate

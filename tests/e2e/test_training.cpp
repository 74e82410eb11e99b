// End-to-end training (src/train/trainer.h) on small in-memory data: exact resume,
// seed determinism, an accuracy floor on a learnable synthetic task, the run directory's
// files, and the errors for misused run directories and a diverging loss.
#include "train/trainer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "run_files.h"
#include "synthetic_data.h"
#include "../support/errors.h"
#include "train/checkpoint.h"
#include "train/trained_model.h"
#include "text_checks.h"

namespace mapgate {
namespace {

using test::message_of;

using test::contains;
using test::first_difference;
using test::read_metrics;

namespace fs = std::filesystem;
using test::ScratchDir;

// Small enough that an epoch takes a fraction of a second on one thread.
const DatasetSplits& small_data() {
  static const DatasetSplits data = test::make_quadrant_splits(/*n_train=*/96, /*n_test=*/40,
                                                               /*size=*/12, /*seed=*/5);
  return data;
}

TrainConfig small_config(const std::string& out_dir) {
  TrainConfig c;
  c.dataset = "quadrant-blobs";
  c.out_dir = out_dir;
  c.model.depth = 10;
  c.model.growth = 4;
  c.model.dropout = 0.1;  // exercises the per-epoch dropout stream
  c.epochs = 2;
  c.batch = 16;
  c.threads = 1;
  c.seed = 3;
  c.augment = true;       // exercises the loader's per-epoch augmentation stream
  return c;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return nlohmann::json::parse(in);
}

TEST(Training, ResumeGivesExactlyTheUninterruptedWeights) {
  ScratchDir dir;
  const std::string run_a = dir / "a", run_b = dir / "b";
  const TrainSummary a = train(small_config(run_a), small_data(), nullptr);
  EXPECT_EQ(a.epochs_done, 2);

  TrainConfig b = small_config(run_b);
  b.stop_after = 1;
  const TrainSummary b1 = train(b, small_data(), nullptr);
  EXPECT_EQ(b1.epochs_done, 1);
  EXPECT_EQ(load_trained_model(run_b).epoch, 1);
  ASSERT_EQ(read_metrics(run_b).size(), 1u);
  b.stop_after = 0;
  b.resume = true;
  std::ostringstream log;
  const TrainSummary b2 = train(b, small_data(), &log);
  EXPECT_EQ(b2.epochs_done, 2);
  EXPECT_TRUE(contains(log.str(), "resuming")) << log.str();

  EXPECT_EQ(first_difference(run_a, run_b), "") << "resumed run differs from the uninterrupted one";
  EXPECT_EQ(load_trained_model(run_b).epoch, 2);
  const auto ma = read_metrics(run_a), mb = read_metrics(run_b);
  ASSERT_EQ(ma.size(), 2u);
  ASSERT_EQ(mb.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(mb[i]["epoch"], static_cast<int>(i + 1));
    EXPECT_EQ(ma[i]["test_accuracy"].get<double>(), mb[i]["test_accuracy"].get<double>()) << "epoch " << i + 1;
    EXPECT_EQ(ma[i]["train_loss"].get<double>(), mb[i]["train_loss"].get<double>()) << "epoch " << i + 1;
  }
  EXPECT_EQ(a.test_accuracy, b2.test_accuracy);
}

// --distill: with alpha 0 the run is the run without a teacher, bit for bit; with alpha 1
// the weights learn from the teacher's logits alone, so the training labels no longer
// matter (the same weights with every label changed).
TEST(Training, DistillationWeightSelectsBetweenLabelsAndTeacher) {
  ScratchDir dir;
  TrainConfig teacher = small_config(dir / "teacher");
  teacher.model.growth = 6;
  train(teacher, small_data(), nullptr);

  TrainConfig c = small_config(dir / "plain");
  c.epochs = 1;
  train(c, small_data(), nullptr);
  c.distill = dir / "teacher";
  c.distill_weight = 0;
  c.out_dir = dir / "alpha0";
  train(c, small_data(), nullptr);
  EXPECT_EQ(first_difference(dir / "plain", dir / "alpha0"), "");
  EXPECT_EQ(read_json(dir / "alpha0/config.json").value("distill", ""), dir / "teacher");

  c.distill_weight = 1;
  c.out_dir = dir / "alpha1";
  train(c, small_data(), nullptr);
  DatasetSplits relabelled = small_data();
  for (auto& label : relabelled.train.labels) label = static_cast<std::uint8_t>((label + 1) % relabelled.train.num_classes);
  c.out_dir = dir / "alpha1_relabelled";
  train(c, relabelled, nullptr);
  EXPECT_EQ(first_difference(dir / "alpha1", dir / "alpha1_relabelled"), "");
  EXPECT_NE(first_difference(dir / "plain", dir / "alpha1"), "");
}

TEST(Training, SameSeedSameWeightsOtherSeedDifferent) {
  ScratchDir dir;
  TrainConfig c = small_config(dir / "s3");
  c.epochs = 1;
  train(c, small_data(), nullptr);
  c.out_dir = dir / "s3_again";
  train(c, small_data(), nullptr);
  c.out_dir = dir / "s4";
  c.seed = 4;
  train(c, small_data(), nullptr);
  EXPECT_EQ(first_difference(dir / "s3", dir / "s3_again"), "");
  EXPECT_NE(first_difference(dir / "s3", dir / "s4"), "");
}

TEST(Training, LearnsQuadrantBlobsAboveFloor) {
  ScratchDir dir;
  const DatasetSplits data = test::make_quadrant_splits(/*n_train=*/400, /*n_test=*/200,
                                                        /*size=*/16, /*seed=*/11);
  TrainConfig c;
  c.dataset = "quadrant-blobs";
  c.out_dir = dir / "run";
  c.model.depth = 10;
  c.model.growth = 6;
  c.epochs = 4;
  c.batch = 32;
  c.lr = 0.1;
  c.schedule = Schedule::kCosine;
  c.augment = false;  // a flip would move the blob to another quadrant
  c.threads = 1;
  c.seed = 1;
  const TrainSummary s = train(c, data, nullptr);
  // Chance is 0.25. This run reaches 0.96 (0.92-0.995 over data and model seeds 1-6,
  // about 1.4 s on one thread); the floor leaves a wide margin.
  EXPECT_GE(s.test_accuracy, 0.7);
  const TrainedModel trained = load_trained_model(c.out_dir);
  EXPECT_EQ(trained.config.num_classes, 4);
  EXPECT_EQ(trained.config.image_size, 16);
  EXPECT_EQ(trained.class_names, data.train.class_names);
  EXPECT_EQ(trained.dataset, "quadrant-blobs");
  const auto metrics = read_metrics(c.out_dir);
  ASSERT_EQ(metrics.size(), 4u);
  EXPECT_LT(metrics.back()["train_loss"].get<double>(), metrics.front()["train_loss"].get<double>());
  EXPECT_DOUBLE_EQ(metrics.back()["test_accuracy"].get<double>(), s.test_accuracy);
}

TEST(Training, RunDirectoryFiles) {
  ScratchDir dir;
  TrainConfig c = small_config(dir / "run");
  c.seed = 1234;
  c.lr = 0.05;
  c.schedule = Schedule::kCosine;
  c.weight_decay = 5e-4;
  c.train_limit = 64;
  c.test_limit = 20;
  train(c, small_data(), nullptr);

  const auto config = read_json(dir / "run/config.json");
  for (const char* key : {"dataset", "data_dir", "out_dir", "model", "epochs", "batch", "lr", "schedule",
                          "momentum", "nesterov", "weight_decay", "threads", "seed", "train_limit",
                          "test_limit", "augment", "revision"})
    EXPECT_TRUE(config.contains(key)) << "config.json lacks " << key << ": " << config.dump();
  EXPECT_EQ(config["seed"], 1234);
  EXPECT_EQ(config["lr"], 0.05);
  EXPECT_EQ(config["schedule"], "cosine");
  EXPECT_EQ(config["weight_decay"], 5e-4);
  EXPECT_EQ(config["batch"], 16);
  EXPECT_EQ(config["epochs"], 2);
  EXPECT_EQ(config["threads"], 1);
  EXPECT_EQ(config["train_limit"], 64);
  EXPECT_EQ(config["test_limit"], 20);
  EXPECT_EQ(config["augment"], true);
  EXPECT_EQ(config["out_dir"], c.out_dir);
  ASSERT_TRUE(config["revision"].is_string());
  EXPECT_FALSE(config["revision"].get<std::string>().empty());
  // The model record is the one actually built (classes and image size from the data).
  const DenseNetConfig model = densenet_config_from_json(config["model"], "config.json");
  EXPECT_EQ(model.depth, 10);
  EXPECT_EQ(model.growth, 4);
  EXPECT_EQ(model.num_classes, 4);
  EXPECT_EQ(model.image_size, 12);
  EXPECT_DOUBLE_EQ(model.dropout, 0.1);

  const auto metrics = read_metrics(c.out_dir);
  ASSERT_EQ(metrics.size(), 2u);
  for (std::size_t i = 0; i < metrics.size(); ++i) {
    const auto& m = metrics[i];
    for (const char* key : {"epoch", "train_loss", "test_accuracy", "images_per_s", "data_wait_seconds"})
      ASSERT_TRUE(m.contains(key) && m[key].is_number()) << "metrics line lacks " << key << ": " << m.dump();
    EXPECT_EQ(m["epoch"], static_cast<int>(i + 1));
    EXPECT_GT(m["train_loss"].get<double>(), 0);
    EXPECT_GE(m["test_accuracy"].get<double>(), 0);
    EXPECT_LE(m["test_accuracy"].get<double>(), 1);
    EXPECT_GT(m["images_per_s"].get<double>(), 0);
    EXPECT_GE(m["data_wait_seconds"].get<double>(), 0);
    if (m.contains("test_examples")) EXPECT_EQ(m["test_examples"], 20);
  }
  EXPECT_TRUE(fs::exists(dir / ("run/" + std::string(kCheckpointFile))));
  EXPECT_EQ(test::temporaries_in(dir / "run"), std::vector<std::string>{});
}

TEST(Training, ExistingRunWithoutResumeIsUsageError) {
  ScratchDir dir;
  TrainConfig c = small_config(dir / "run");
  c.epochs = 1;
  train(c, small_data(), nullptr);
  try {
    train(c, small_data(), nullptr);
    FAIL() << "a second run into the same --out was accepted";
  } catch (const UsageError& e) {
    EXPECT_TRUE(contains(e.what(), "--out") && contains(e.what(), "--resume")) << e.what();
  }
  EXPECT_EQ(load_trained_model(c.out_dir).epoch, 1);  // left untouched
}

TEST(Training, ResumeWithoutCheckpointIsError) {
  ScratchDir dir;
  TrainConfig c = small_config(dir / "empty");
  c.resume = true;
  try {
    train(c, small_data(), nullptr);
    FAIL() << "--resume without a checkpoint was accepted";
  } catch (const UsageError& e) {
    FAIL() << "expected a runtime Error, got UsageError: " << e.what();
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), quoted((fs::path(c.out_dir) / kCheckpointFile).string()))) << e.what();
  }
}

TEST(Training, NonFiniteLossStopsNamingTheStepAndKeepsLastCheckpoint) {
  ScratchDir dir;
  TrainConfig c = small_config(dir / "run");
  c.stop_after = 1;
  train(c, small_data(), nullptr);
  const std::string file = c.out_dir + "/" + kCheckpointFile;

  // Poison one weight of the epoch-1 checkpoint with the largest finite float (a NaN or
  // infinite weight is refused at load): the resumed epoch 2 overflows to a NaN loss at
  // its first step.
  {
    TrainedModel t = load_trained_model(c.out_dir);
    torch::optim::SGD sgd(t.model->parameters(), torch::optim::SGDOptions(c.lr));
    Checkpoint checkpoint(file);
    checkpoint.load_optimizer(sgd);
    torch::NoGradGuard no_grad;
    t.model->named_parameters()["stem.weight"].view(-1)[0] = std::numeric_limits<float>::max();
    save_checkpoint(file, *t.model, &sgd, checkpoint.state());
  }
  const TrainedModel before = load_trained_model(c.out_dir);

  c.stop_after = 0;
  c.resume = true;
  const std::string msg = message_of([&] { train(c, small_data(), nullptr); });
  EXPECT_TRUE(contains(msg, "non-finite loss (nan)") || contains(msg, "non-finite loss (-nan)")) << msg;
  EXPECT_TRUE(contains(msg, "epoch 2 step 1")) << msg;
  EXPECT_TRUE(contains(msg, quoted(file))) << msg;
  EXPECT_FALSE(contains(msg, "\n")) << msg;

  // The epoch-1 checkpoint is still there, loadable and unchanged.
  TrainedModel after = load_trained_model(c.out_dir);
  EXPECT_EQ(after.epoch, 1);
  auto pb = before.model->named_parameters();
  for (const auto& p : after.model->named_parameters())
    EXPECT_TRUE(torch::equal(p.value(), pb[p.key()]) ||
                (p.key() == "stem.weight" && torch::equal(p.value().nan_to_num(), pb[p.key()].nan_to_num())))
        << p.key();
  EXPECT_EQ(read_metrics(c.out_dir).size(), 1u);
}

// Writes a NaN into one gradient entry at the given steps of the run (TrainHooks).
TrainHooks poison_gradient_at(std::vector<std::int64_t> steps, std::string parameter) {
  TrainHooks hooks;
  hooks.after_backward = [steps, parameter](std::int64_t step, torch::nn::Module& model) {
    if (std::find(steps.begin(), steps.end(), step) == steps.end()) return;
    torch::NoGradGuard no_grad;
    model.named_parameters()[parameter].grad().view(-1)[0] = std::nanf("");
  };
  return hooks;
}

TEST(Training, NonFiniteGradientStopsNamingTheParameterAndStep) {
  ScratchDir dir;
  TrainConfig c = small_config(dir / "run");
  // 96 images / batch 16 = 6 steps per epoch: step 8 of the run is epoch 2 step 2.
  const TrainHooks hooks = poison_gradient_at({8}, "stem.weight");
  const std::string msg = message_of([&] { train(c, small_data(), nullptr, &hooks); });
  EXPECT_TRUE(contains(msg, "non-finite gradient of stem.weight at epoch 2 step 2")) << msg;
  EXPECT_TRUE(contains(msg, "--skip-nonfinite")) << msg;
  EXPECT_FALSE(contains(msg, "\n")) << msg;
  // Epoch 1's checkpoint and metrics are intact; the poisoned step never reached them.
  const TrainedModel after = load_trained_model(c.out_dir);
  EXPECT_EQ(after.epoch, 1);
  for (const auto& p : after.model->parameters()) EXPECT_TRUE(torch::isfinite(p).all().item<bool>());
  EXPECT_EQ(read_metrics(c.out_dir).size(), 1u);
}

TEST(Training, SkipNonFiniteSkipsAndCountsBatches) {
  ScratchDir dir;
  TrainConfig c = small_config(dir / "skip");
  c.skip_nonfinite = true;
  const TrainHooks hooks = poison_gradient_at({2, 9, 12}, "classifier.weight");
  train(c, small_data(), nullptr, &hooks);
  const auto metrics = read_metrics(c.out_dir);
  ASSERT_EQ(metrics.size(), 2u);
  EXPECT_EQ(metrics[0]["skipped_batches"], 1);
  EXPECT_EQ(metrics[1]["skipped_batches"], 2);
  const TrainedModel t = load_trained_model(c.out_dir);
  for (const auto& p : t.model->parameters()) EXPECT_TRUE(torch::isfinite(p).all().item<bool>());
  for (const auto& b : t.model->buffers()) EXPECT_TRUE(torch::isfinite(b).all().item<bool>());
}

TEST(Training, SkipNonFiniteStopsWhenAWholeEpochIsSkipped) {
  ScratchDir dir;
  TrainConfig c = small_config(dir / "all");
  c.skip_nonfinite = true;
  const TrainHooks every = poison_gradient_at({1, 2, 3, 4, 5, 6}, "classifier.weight");
  const std::string msg = message_of([&] { train(c, small_data(), nullptr, &every); });
  EXPECT_TRUE(contains(msg, "every batch of epoch 1")) << msg;
  EXPECT_FALSE(fs::exists(fs::path(c.out_dir) / kCheckpointFile));
}

TEST(Training, ResumeWithDifferentSettingsIsRefused) {
  ScratchDir dir;
  TrainConfig c = small_config(dir / "run");
  c.stop_after = 1;
  train(c, small_data(), nullptr);
  c.stop_after = 0;
  c.resume = true;
  c.lr *= 2;
  try {
    train(c, small_data(), nullptr);
    FAIL() << "resume with a different --lr was accepted";
  } catch (const UsageError& e) {
    EXPECT_TRUE(contains(e.what(), "\"lr\"")) << e.what();
  }
  EXPECT_EQ(load_trained_model(c.out_dir).epoch, 1);
  c.lr /= 2;
  c.epochs += 1;  // extending a run is allowed
  EXPECT_EQ(train(c, small_data(), nullptr).epochs_done, c.epochs);
}

TEST(Training, EpochSeedsDiffer) {
  EXPECT_NE(epoch_seed(0, 0), epoch_seed(0, 1));
  EXPECT_NE(epoch_seed(0, 0), epoch_seed(1, 0));
  EXPECT_EQ(epoch_seed(7, 3), epoch_seed(7, 3));
}

}  // namespace
}  // namespace mapgate

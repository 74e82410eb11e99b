// Checkpoint files (src/train/checkpoint.h): a bit-exact round trip of weights, BN
// buffers and optimizer state (SGD and Adam), one-line errors naming the file (and the
// layer) for every kind of bad checkpoint, and format 1 read for the upgrade only.
#include "train/checkpoint.h"

#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>
#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "../e2e/synthetic_data.h"
#include "../support/checkpoint_files.h"
#include "../support/errors.h"
#include "common/error.h"
#include "model/densenet.h"
#include "train/checkpoint_archive.h"
#include "train/checkpoint_format1.h"
#include "train/trained_model.h"
#include "../e2e/text_checks.h"

namespace mapgate {
namespace {

using test::message_of;

using test::write_bytes;

namespace fs = std::filesystem;
using test::contains;
using test::ScratchDir;

DenseNetConfig tiny_config(int growth = 4) {
  DenseNetConfig c;
  c.depth = 10;
  c.growth = growth;
  c.image_size = 12;
  return c;
}

DenseNet make_model(const DenseNetConfig& c, std::uint64_t seed) {
  torch::manual_seed(seed);
  return DenseNet(c);
}

torch::optim::SGD make_sgd(DenseNet& model) {
  return torch::optim::SGD(model->parameters(),
                           torch::optim::SGDOptions(0.1).momentum(0.9).nesterov(true).weight_decay(1e-4));
}

// One SGD step on a fixed random batch (train mode: BN running statistics move too).
void sgd_step(DenseNet& model, torch::optim::SGD& optimizer, std::uint64_t seed) {
  torch::manual_seed(seed);
  const auto images = torch::randn({8, 3, 12, 12});
  const auto labels = torch::randint(0, 10, {8}, torch::kInt64);
  model->train();
  optimizer.zero_grad();
  torch::nn::functional::cross_entropy(model->forward(images), labels).backward();
  optimizer.step();
}

// Empty if every parameter and buffer is bit-identical, else the first that differs.
std::string first_difference(torch::nn::Module& a, torch::nn::Module& b) {
  const auto pa = a.named_parameters(), pb = b.named_parameters();
  const auto ba = a.named_buffers(), bb = b.named_buffers();
  if (pa.size() != pb.size() || ba.size() != bb.size()) return "different number of tensors";
  for (const auto& p : pa) {
    if (!pb.contains(p.key())) return p.key() + " missing";
    if (!torch::equal(p.value(), pb[p.key()])) return p.key();
  }
  for (const auto& t : ba) {
    if (!bb.contains(t.key())) return t.key() + " missing";
    if (!torch::equal(t.value(), bb[t.key()])) return t.key();
  }
  return "";
}

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override { torch::set_num_threads(1); }

  // A depth-10, k=4 model after three SGD steps, saved with its optimizer.
  std::string save_trained(const std::string& name) {
    const std::string path = dir_ / name;
    DenseNet model = make_model(tiny_config(), /*seed=*/1);
    auto optimizer = make_sgd(model);
    for (int s = 0; s < 3; ++s) sgd_step(model, optimizer, 100 + s);
    save_checkpoint(path, *model, &optimizer, {{"epoch", 3}});
    return path;
  }

  ScratchDir dir_;
};

TEST_F(CheckpointTest, RoundTripIsBitExactForWeightsBuffersAndOptimizer) {
  const std::string path = dir_ / "model.pt";
  DenseNet model = make_model(tiny_config(), /*seed=*/1);
  auto optimizer = make_sgd(model);
  for (int s = 0; s < 3; ++s) sgd_step(model, optimizer, 100 + s);
  save_checkpoint(path, *model, &optimizer, {{"epoch", 3}, {"note", "round trip"}});
  EXPECT_EQ(test::temporaries_in(dir_.path()), std::vector<std::string>{}) << "temporary file left behind";

  DenseNet loaded = make_model(tiny_config(), /*seed=*/2);
  ASSERT_NE(first_difference(*model, *loaded), "") << "seeds 1 and 2 gave the same model";
  auto loaded_optimizer = make_sgd(loaded);
  Checkpoint checkpoint(path);
  EXPECT_EQ(checkpoint.path(), path);
  EXPECT_EQ(checkpoint.state().value("epoch", 0), 3);
  EXPECT_EQ(checkpoint.state().value("note", ""), "round trip");
  EXPECT_EQ(checkpoint.state().value("format", ""), "mapgate-checkpoint");
  EXPECT_EQ(checkpoint.state().value("version", 0u), kCheckpointFormatVersion);
  checkpoint.load_model(*loaded);
  checkpoint.load_optimizer(loaded_optimizer);
  EXPECT_EQ(first_difference(*model, *loaded), "") << "differs after load";
  // BN buffers are really there (running stats moved away from their initial values).
  const auto buffers = loaded->named_buffers();
  ASSERT_TRUE(buffers.contains("block1.0.norm.running_mean"));
  EXPECT_FALSE(torch::equal(buffers["block1.0.norm.running_mean"], torch::zeros({16})));
  ASSERT_TRUE(buffers.contains("block1.0.norm.num_batches_tracked"));
  EXPECT_EQ(buffers["block1.0.norm.num_batches_tracked"].item<std::int64_t>(), 3);

  // The momentum buffers came back too: one more identical step keeps them identical
  // (a lost momentum buffer would make this step differ).
  sgd_step(model, optimizer, 200);
  sgd_step(loaded, loaded_optimizer, 200);
  EXPECT_EQ(first_difference(*model, *loaded), "") << "differs after one more SGD step";
}

// The gate optimizer of a gated run is Adam: its steps and both moments come back.
TEST_F(CheckpointTest, AdamStateRoundTripsUnderGateOptimizer) {
  const std::string path = dir_ / "adam.pt";
  auto adam_step = [](DenseNet& model, torch::optim::Adam& adam, std::uint64_t seed) {
    torch::manual_seed(seed);
    const auto labels = torch::randint(0, 10, {8}, torch::kInt64);
    adam.zero_grad();
    torch::nn::functional::cross_entropy(model->forward(torch::randn({8, 3, 12, 12})), labels).backward();
    adam.step();
  };
  DenseNet model = make_model(tiny_config(), 1);
  auto sgd = make_sgd(model);
  torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(1e-3));
  for (int s = 0; s < 2; ++s) adam_step(model, adam, 300 + s);
  save_checkpoint(path, *model, &sgd, {{"epoch", 1}}, &adam);

  DenseNet loaded = make_model(tiny_config(), 2);
  auto loaded_sgd = make_sgd(loaded);
  torch::optim::Adam loaded_adam(loaded->parameters(), torch::optim::AdamOptions(1e-3));
  Checkpoint checkpoint(path);
  checkpoint.load_model(*loaded);
  checkpoint.load_optimizer(loaded_adam, "gate_optimizer");
  // Adam's third step depends on the step count and both moments.
  adam_step(model, adam, 400);
  adam_step(loaded, loaded_adam, 400);
  EXPECT_EQ(first_difference(*model, *loaded), "") << "differs after one more Adam step";
  // Adam's state where SGD's belongs is refused by kind.
  const std::string msg = message_of([&] { checkpoint.load_optimizer(loaded_sgd, "gate_optimizer"); });
  EXPECT_TRUE(contains(msg, "gate_optimizer state is \"adam\"'s, this run's gate_optimizer is \"sgd\"")) << msg;
}

TEST_F(CheckpointTest, SavingAgainReplacesTheFile) {
  const std::string path = save_trained("model.pt");
  DenseNet other = make_model(tiny_config(), /*seed=*/7);
  save_checkpoint(path, *other, nullptr, {{"epoch", 9}});
  Checkpoint checkpoint(path);
  EXPECT_EQ(checkpoint.state().value("epoch", 0), 9);
  DenseNet loaded = make_model(tiny_config(), /*seed=*/8);
  checkpoint.load_model(*loaded);
  EXPECT_EQ(first_difference(*other, *loaded), "");
  // No optimizer stored: resuming from it must say so.
  DenseNet m = make_model(tiny_config(), 1);
  auto optimizer = make_sgd(m);
  const std::string msg = message_of([&] { checkpoint.load_optimizer(optimizer); });
  EXPECT_TRUE(contains(msg, quoted(path)) && contains(msg, "optimizer")) << msg;
}

TEST_F(CheckpointTest, DifferentGrowthNamesLayerAndBothShapes) {
  const std::string path = save_trained("k4.pt");
  DenseNet wider = make_model(tiny_config(/*growth=*/6), /*seed=*/1);
  Checkpoint checkpoint(path);
  const std::string msg = message_of([&] { checkpoint.load_model(*wider); });
  EXPECT_TRUE(contains(msg, quoted(path))) << msg;
  EXPECT_TRUE(contains(msg, "block1.0.conv.weight")) << msg;
  EXPECT_TRUE(contains(msg, "[4, 16, 3, 3]")) << msg;  // stored
  EXPECT_TRUE(contains(msg, "[6, 16, 3, 3]")) << msg;  // expected by this model
  EXPECT_TRUE(contains(msg, "--growth")) << msg;
  EXPECT_FALSE(contains(msg, "\n")) << msg;
}

TEST_F(CheckpointTest, DifferentDepthNamesMissingLayer) {
  const std::string path = save_trained("d10.pt");
  DenseNetConfig deeper = tiny_config();
  deeper.depth = 13;  // 3 layers per block: block1.2 is not in the file
  DenseNet model = make_model(deeper, 1);
  const std::string msg = message_of([&] { Checkpoint(path).load_model(*model); });
  EXPECT_TRUE(contains(msg, quoted(path)) && contains(msg, "block1.2.")) << msg;
  EXPECT_TRUE(contains(msg, "missing")) << msg;
}

// Every bad file gives a one-line mapgate::Error naming the file.
void expect_one_line_error_naming(const std::string& path, const std::string& also = "") {
  const std::string msg = message_of([&] { Checkpoint checkpoint(path); });
  EXPECT_TRUE(contains(msg, quoted(path))) << msg;
  EXPECT_FALSE(contains(msg, "\n")) << msg;
  EXPECT_FALSE(contains(msg, "NOT a mapgate::Error")) << msg;
  EXPECT_FALSE(contains(msg, "(no exception)")) << msg;
  if (!also.empty()) EXPECT_TRUE(contains(msg, also)) << msg;
  // load_trained_model (eval, flops, export) goes through the same checks.
  const std::string via_model = message_of([&] { load_trained_model(path); });
  EXPECT_TRUE(contains(via_model, quoted(path))) << via_model;
  EXPECT_FALSE(contains(via_model, "\n")) << via_model;
}

TEST_F(CheckpointTest, MissingFile) {
  expect_one_line_error_naming(dir_ / "nope.pt", "no such file");
}

TEST_F(CheckpointTest, RandomBytes) {
  std::mt19937 rng(42);
  std::vector<char> junk(4096);
  for (char& c : junk) c = static_cast<char>(rng() & 0xff);
  const std::string path = dir_ / "junk.pt";
  write_bytes(path, junk.data(), junk.size());
  expect_one_line_error_naming(path);
}

TEST_F(CheckpointTest, EmptyFile) {
  const std::string path = dir_ / "empty.pt";
  write_bytes(path, "", 0);
  expect_one_line_error_naming(path);
}

TEST_F(CheckpointTest, TruncatedCheckpoint) {
  const auto bytes = read_bytes(save_trained("whole.pt"));
  ASSERT_GT(bytes.size(), 1000u);
  const std::string path = dir_ / "half.pt";
  write_bytes(path, bytes.data(), bytes.size() / 2);
  expect_one_line_error_naming(path);
}

// Format 1 (a LibTorch archive) is refused by every reader, which names the command
// that converts it.
TEST_F(CheckpointTest, Format1ArchiveNamesTheUpgradeCommand) {
  const std::string path = dir_ / "old.pt";
  DenseNet model = make_model(tiny_config(), 1);
  test::write_format1_checkpoint(path, *model, {{"epoch", 2}});
  expect_one_line_error_naming(path, "format 1 (a LibTorch archive");
  EXPECT_TRUE(contains(message_of([&] { Checkpoint c(path); }), "mapgate upgrade-checkpoint"));
}

// What `mapgate upgrade-checkpoint` does: format 1 read, written as format 2, the same
// weights and buffers (int64 num_batches_tracked included) and state.
TEST_F(CheckpointTest, Format1UpgradesBitExact) {
  const std::string old_path = dir_ / "old.pt", new_path = dir_ / "new.pt";
  DenseNet model = make_model(tiny_config(), 1);
  auto optimizer = make_sgd(model);
  sgd_step(model, optimizer, 5);
  test::write_format1_checkpoint(old_path, *model, {{"epoch", 2}, {"note", "old"}});
  const Format1Checkpoint old = read_format1_checkpoint(old_path);
  EXPECT_EQ(old.state.value("note", ""), "old");
  write_checkpoint(new_path, old.state, old.tensors, {});
  Checkpoint upgraded(new_path);
  EXPECT_EQ(upgraded.epoch(), 2);
  EXPECT_EQ(upgraded.state().value("version", 0u), kCheckpointFormatVersion);
  DenseNet loaded = make_model(tiny_config(), 2);
  upgraded.load_model(*loaded);
  EXPECT_EQ(first_difference(*model, *loaded), "");
  auto fresh = make_sgd(loaded);
  EXPECT_TRUE(contains(message_of([&] { upgraded.load_optimizer(fresh); }), "has no optimizer state"));
}

TEST_F(CheckpointTest, ForeignStateRecord) {
  const std::string path = dir_ / "foreign.pt";
  test::write_checkpoint_with_tensor(path, {{"format", "something-else"}}, {2}, std::string(8, '\0'));
  expect_one_line_error_naming(path, "not a mapgate checkpoint");
}

TEST_F(CheckpointTest, NewerVersionSaysWhatThisBuildReads) {
  const std::string path = dir_ / "future.pt";
  test::write_checkpoint_header(path, "{}", "", /*version=*/99);
  expect_one_line_error_naming(path, "format version 99, this build reads version 2 (newer mapgate?)");
}

// The header's tensor list is checked against the bytes that follow it before anything
// is allocated or copied: each entry gives a one-line error naming the tensor.
TEST_F(CheckpointTest, MalformedTensorListsAreErrors) {
  const std::string path = dir_ / "bad.pt";
  const nlohmann::json state = {{"format", "mapgate-checkpoint"}, {"version", 2}};
  const std::string eight(8, '\0');
  test::write_checkpoint_with_tensor(path, state, {4}, eight);
  expect_one_line_error_naming(path, "truncated: tensor \"model/x\"'s data needs 4 x 4 bytes at offset");
  test::write_checkpoint_with_tensor(path, state, {2147483647, 2147483647, 2147483647}, eight);
  expect_one_line_error_naming(path, "truncated: tensor \"model/x\"'s data needs more than");
  test::write_checkpoint_with_tensor(path, state, {2}, eight + "x");
  expect_one_line_error_naming(path, "1 unexpected bytes after the last tensor");
  test::write_checkpoint_with_tensor(path, state, {2}, eight, "float16");
  expect_one_line_error_naming(path, "has dtype \"float16\", expected \"float32\" or \"int64\"");
  test::write_checkpoint_with_tensor(path, state, {-1}, eight);
  expect_one_line_error_naming(path, "has shape [-1], expected sizes in 0..2147483647");
  test::write_checkpoint_with_tensor(path, state, {1, 1, 1, 1, 1, 1, 1, 1, 1}, eight);
  expect_one_line_error_naming(path, "expected an array of at most 8 sizes");
  const nlohmann::json twice = {{"name", "model/x"}, {"dtype", "float32"}, {"shape", {1}}};
  test::write_checkpoint_header(path, nlohmann::json({{"state", state}, {"optimizers", nlohmann::json::object()},
                                                       {"tensors", {twice, twice}}}).dump(), eight);
  expect_one_line_error_naming(path, "tensor \"model/x\" appears twice");
  test::write_checkpoint_header(path, std::string(100, '[') + "1" + std::string(100, ']'));
  expect_one_line_error_naming(path, "nests arrays and objects deeper than 64 levels");
  test::write_checkpoint_header(path, R"({"state": {}, "optimizers": {}})");
  expect_one_line_error_naming(path, "header lacks \"state\", \"optimizers\" or \"tensors\"");
}

// A state field of the wrong type is an error naming the file, not a raw JSON exception.
TEST_F(CheckpointTest, EpochOfTheWrongTypeNamesTheFile) {
  const std::string path = dir_ / "epoch.pt";
  DenseNet model = make_model(tiny_config(), 1);
  for (const nlohmann::json& epoch : {nlohmann::json("three"), nlohmann::json(-1), nlohmann::json(2.5)}) {
    save_checkpoint(path, *model, nullptr, {{"epoch", epoch}});
    const std::string msg = message_of([&] { Checkpoint(path).epoch(); });
    EXPECT_TRUE(contains(msg, quoted(path) + ": state \"epoch\" is " + epoch.dump())) << msg;
  }
  save_checkpoint(path, *model, nullptr, {{"epoch", 12}});
  EXPECT_EQ(Checkpoint(path).epoch(), 12);
}

// A copy of the archive `from` whose tensor storage records ("data/N") are all empty: the
// pickled shapes stay, the bytes behind them are gone (LibTorch's reader does not check).
void write_with_empty_storages(const std::string& from, const std::string& to) {
  caffe2::serialize::PyTorchStreamReader reader(from);
  caffe2::serialize::PyTorchStreamWriter writer(to);
  for (const auto& name : reader.getAllRecords()) {
    if (name == "version" || name == ".data/version") continue;  // the writer adds its own
    auto record = reader.getRecord(name);
    const bool storage = name.rfind("data/", 0) == 0;
    writer.writeRecord(name, std::get<0>(record).get(), storage ? 0 : std::get<1>(record));
  }
  writer.writeEndOfFile();
}

TEST_F(CheckpointTest, Format1TensorWhoseStorageIsGoneIsAnErrorNotACrash) {
  const std::string whole = dir_ / "whole.pt", path = dir_ / "hollow.pt";
  DenseNet model = make_model(tiny_config(), 1);
  test::write_format1_checkpoint(whole, *model, {{"epoch", 1}});
  write_with_empty_storages(whole, path);
  const std::string msg = message_of([&] { read_format1_checkpoint(path); });
  EXPECT_TRUE(contains(msg, quoted(path))) << msg;
  EXPECT_TRUE(contains(msg, "reaches byte") && contains(msg, "of a storage of 0 bytes")) << msg;
}

TEST_F(CheckpointTest, NonFiniteWeightsAndOptimizerStateAreErrors) {
  DenseNet model = make_model(tiny_config(), 1);
  auto optimizer = make_sgd(model);
  sgd_step(model, optimizer, 7);
  const std::string path = dir_ / "nan.pt";
  {
    torch::NoGradGuard no_grad;
    model->named_parameters()["classifier.weight"][0][0] = std::nan("");
  }
  save_checkpoint(path, *model, &optimizer, {{"epoch", 1}});
  DenseNet other = make_model(tiny_config(), 2);
  EXPECT_TRUE(contains(message_of([&] { Checkpoint(path).load_model(*other); }),
                       "layer classifier.weight holds NaN or infinite values"));
  // The same model, finite, with an infinite momentum buffer: --resume refuses it.
  {
    torch::NoGradGuard no_grad;
    model->named_parameters()["classifier.weight"][0][0] = 0.0;
  }
  auto& state = *optimizer.state().begin()->second;
  static_cast<torch::optim::SGDParamState&>(state).momentum_buffer().fill_(INFINITY);
  save_checkpoint(path, *model, &optimizer, {{"epoch", 1}});
  Checkpoint checkpoint(path);
  EXPECT_NO_THROW(checkpoint.load_model(*other));
  auto fresh = make_sgd(other);
  EXPECT_TRUE(contains(message_of([&] { checkpoint.load_optimizer(fresh); }),
                       "/momentum_buffer\" holds NaN or infinite values"));
}

TEST_F(CheckpointTest, CheckpointPathOfRunDirectory) {
  EXPECT_EQ(checkpoint_path(dir_.path()), dir_ / kCheckpointFile);
  EXPECT_EQ(checkpoint_path(dir_ / "x.pt"), dir_ / "x.pt");
}

// The pickle scan that runs before LibTorch's unpickler, on pickles made by hand.
TEST(PickleScan, AcceptsWellFormedAndNamesEachOutOfBoundsField) {
  using namespace std::string_literals;
  EXPECT_EQ(pickle_problem("\x80\x02K\x05q\x00h\x00X\x02\0\0\0ab."s), "");
  EXPECT_EQ(pickle_problem("\x80\x02X\xff\xff\xff\xff.."s),
            "pickle length 4294967295 at byte 2 exceeds the 2 bytes left");
  EXPECT_EQ(pickle_problem("K\x05r\x00\x00\x01\x00."s), "pickle memo index 65536 at byte 2 skips past 0");
  EXPECT_EQ(pickle_problem("h\x00."s), "pickle memo index 0 at byte 0 was never set");
  EXPECT_EQ(pickle_problem("\xff."s), "unknown pickle opcode 255 at byte 0");
  EXPECT_EQ(pickle_problem("cmodule\nname"s), "pickle ends inside an opcode at byte 0");
  EXPECT_EQ(pickle_problem("K\x05"s), "pickle has no STOP opcode");
  EXPECT_EQ(pickle_problem("J\x01\x02"s), "pickle ends inside an opcode at byte 0");
}

}  // namespace
}  // namespace mapgate

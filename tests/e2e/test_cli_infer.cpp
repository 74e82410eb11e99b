// `mapgate infer` through the built binary: the engine on an exported weight file gives
// the accuracy `mapgate eval` gives through LibTorch, and a damaged weight file is exit 1
// with one line naming it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "text_checks.h"

namespace mapgate {
namespace {

using test::CliResult;
using test::contains;
using test::one_line;
using test::run_mapgate;
using test::shell_quote;

class CliInfer : public ::testing::Test {
 protected:
  void SetUp() override {
    test::write_cifar_fixture(data_, /*per_batch=*/20, /*test=*/50);
    const CliResult train = run_mapgate(dir_, "train --data " + shell_quote(data_) + " --out " + shell_quote(run_) +
                                                  " --depth 7 --growth 4 --epochs 1 --threads 1 --seed 2");
    ASSERT_EQ(train.exit_code, 0) << train.describe();
    const CliResult exported = run_mapgate(dir_, "export --model " + shell_quote(run_) + " --out " + shell_quote(weights_));
    ASSERT_EQ(exported.exit_code, 0) << exported.describe();
  }
  test::ScratchDir dir_;
  const std::string data_ = dir_ / "cifar", run_ = dir_ / "run", weights_ = dir_ / "net.mgw";
};

TEST_F(CliInfer, EngineAccuracyEqualsLibTorchEval) {
  const CliResult infer = run_mapgate(dir_, "infer --weights " + shell_quote(weights_) + " --data " +
                                                shell_quote(data_) + " --threads 2 --json");
  ASSERT_EQ(infer.exit_code, 0) << infer.describe();
  const CliResult eval = run_mapgate(dir_, "eval --model " + shell_quote(run_) + " --data " + shell_quote(data_) +
                                               " --threads 1 --json");
  ASSERT_EQ(eval.exit_code, 0) << eval.describe();
  const auto a = nlohmann::json::parse(infer.out), b = nlohmann::json::parse(eval.out);
  EXPECT_EQ(a["examples"], 50);
  EXPECT_EQ(a["accuracy"], b["accuracy"]) << infer.out << eval.out;
  EXPECT_GT(a["macs_mean"].get<double>(), 0);
  // The engine pools before each transition's 1x1 convolution: it executes fewer MACs
  // than the paper's count (macs_mean), but not zero.
  EXPECT_GT(a["macs_executed_mean"].get<double>(), 0);
  EXPECT_LT(a["macs_executed_mean"].get<double>(), a["macs_mean"].get<double>()) << infer.out;
}

TEST_F(CliInfer, TruncatedWeightFileIsOneLineExitOne) {
  const auto size = std::filesystem::file_size(weights_);
  std::filesystem::resize_file(weights_, size / 2);
  const CliResult r = run_mapgate(dir_, "infer --weights " + shell_quote(weights_) + " --data " + shell_quote(data_));
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_TRUE(one_line(r.err) && r.err.find(weights_) != std::string::npos) << r.describe();
}

// Weights of a 10-class CIFAR-10 network on CIFAR-100 (same images, 100 classes): exit 1,
// naming both shapes, before any inference.
TEST_F(CliInfer, DataTheNetworkDoesNotTakeIsOneLineExitOne) {
  const std::string cifar100 = dir_ / "cifar100";
  std::filesystem::create_directories(cifar100);
  for (const char* file : {"train.bin", "test.bin"}) {
    std::ofstream f(cifar100 + "/" + file, std::ios::binary);
    for (int record = 0; record < 3; ++record) {
      const std::string labels = {char(record), char(40 + record)};  // coarse, fine
      f << labels << std::string(3 * 32 * 32, char(record * 50));
    }
  }
  const CliResult r = run_mapgate(dir_, "infer --weights " + shell_quote(weights_) + " --dataset cifar100 --data " +
                                            shell_quote(cifar100));
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_TRUE(one_line(r.err)) << r.describe();
  EXPECT_TRUE(contains(r.err, "weights \"" + weights_ + "\": takes 3x32x32 images and 10 classes; cifar100 in \"" +
                                  cifar100 + "\" has 3x32x32 images and 100 classes"))
      << r.describe();
}

TEST_F(CliInfer, MissingWeightsFlagIsUsageError) {
  const CliResult r = run_mapgate(dir_, "infer --data " + shell_quote(data_));
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_TRUE(one_line(r.err) && r.err.find("--weights") != std::string::npos) << r.describe();
}

}  // namespace
}  // namespace mapgate

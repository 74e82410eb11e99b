// --amp bf16 (docs/scale.md): a run under bfloat16 autocast trains (dense and gated), lands
// near the float32 run without equalling it, records the setting, and a resume keeps it.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "run_files.h"
#include "synthetic_data.h"
#include "train/trained_model.h"

namespace mapgate {
namespace {

nlohmann::json run_config(const std::string& run) {
  std::ifstream in(std::filesystem::path(run) / "config.json");
  return nlohmann::json::parse(in);
}

class AmpFlag : public ::testing::Test {
 protected:
  void SetUp() override { test::write_cifar_fixture(data_, /*per_batch=*/32, /*test=*/32); }
  std::string train_args(const std::string& run, const std::string& extra) const {
    return "train --data " + data_ + " --out " + run + " --depth 7 --growth 4 --batch 16 --threads 1 --seed 2 "
           "--epochs 2 --no-augment --lr 0.05 " + extra;
  }
  test::ScratchDir dir_;
  const std::string data_ = dir_ / "cifar";
};

TEST_F(AmpFlag, Bf16TrainsCloseToFloat32) {
  ASSERT_EQ(test::run_mapgate(dir_, train_args(dir_ / "fp32", "")).exit_code, 0);
  const test::CliResult r = test::run_mapgate(dir_, train_args(dir_ / "bf16", "--amp bf16"));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(run_config(dir_ / "bf16").at("amp"), "bf16");
  EXPECT_FALSE(run_config(dir_ / "fp32").contains("amp"));
  const auto a = test::read_metrics(dir_ / "fp32"), b = test::read_metrics(dir_ / "bf16");
  ASSERT_EQ(b.size(), 2u);
  for (std::size_t e = 0; e < 2; ++e) {
    const double la = a.at(e).at("train_loss").get<double>(), lb = b.at(e).at("train_loss").get<double>();
    EXPECT_TRUE(std::isfinite(lb));
    EXPECT_NE(la, lb) << "epoch " << e + 1 << ": bfloat16 gave float32's loss bit for bit";
    EXPECT_NEAR(la, lb, 0.1) << "epoch " << e + 1;
  }
  EXPECT_LT(b.at(1).at("train_loss").get<double>(), b.at(0).at("train_loss").get<double>()) << "it learns";
  const TrainedModel m = load_trained_model(dir_ / "bf16");
  for (const auto& p : m.model->parameters()) EXPECT_EQ(p.scalar_type(), torch::kFloat);
}

TEST_F(AmpFlag, GatedRunAndResumeKeepTheSetting) {
  const std::string gated = "--gates reinforce --penalty 2 --bn-recal 2 --amp bf16";
  const test::CliResult r = test::run_mapgate(dir_, train_args(dir_ / "g", gated + " --stop-after 1"));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const test::CliResult off = test::run_mapgate(dir_, train_args(dir_ / "g", "--gates reinforce --penalty 2 "
                                                                              "--bn-recal 2 --resume"));
  EXPECT_EQ(off.exit_code, 2) << off.describe();
  EXPECT_NE(off.err.find("\"amp\""), std::string::npos) << off.err;
  ASSERT_EQ(test::run_mapgate(dir_, train_args(dir_ / "g", gated + " --resume")).exit_code, 0);
  const auto m = test::read_metrics(dir_ / "g");
  ASSERT_EQ(m.size(), 2u);
  EXPECT_TRUE(std::isfinite(m.at(1).at("test_loss").get<double>()));
  EXPECT_EQ(test::run_mapgate(dir_, train_args(dir_ / "x", "--amp fp16")).exit_code, 2);
}

}  // namespace
}  // namespace mapgate

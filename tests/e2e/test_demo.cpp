// `mapgate demo` end to end on a tiny CIFAR-10 fixture: the dense and gated runs side by
// side (accuracy, MACs, input dependence, engine images/s, cheapest and dearest images),
// and --train, which fine-tunes gates onto the dense run and shows the new model.
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "synthetic_data.h"
#include "text_checks.h"

namespace mapgate {
namespace {

using test::CliResult;
using test::run_mapgate;
using test::ScratchDir;
using test::shell_quote;

class Demo : public ::testing::Test {
 protected:
  void SetUp() override {
    test::write_cifar_fixture(data_, 40, 30);
    const std::string common = " --data " + shell_quote(data_) + " --depth 10 --growth 2 --epochs 1 --batch 20 --threads 1";
    ASSERT_EQ(run_mapgate(dir_, "train --out " + shell_quote(dense_) + common).exit_code, 0);
    ASSERT_EQ(run_mapgate(dir_, "train --out " + shell_quote(gated_) + common + " --init " + shell_quote(dense_) +
                                    " --gates reinforce --penalty 4")
                  .exit_code,
              0);
  }
  ScratchDir dir_;
  const std::string data_ = dir_ / "cifar", dense_ = dir_ / "dense", gated_ = dir_ / "gated";
};

TEST_F(Demo, ShowsTheDenseAndGatedModelsSideBySide) {
  const std::string out = dir_ / "demo";
  const CliResult r = run_mapgate(dir_, "demo --data " + shell_quote(data_) + " --dense " + shell_quote(dense_) +
                                            " --gated " + shell_quote(gated_) + " --out " + shell_quote(out) +
                                            " --threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  for (const char* line : {"dense  ", "gated  ", "accuracy", "MACs on average (p5", "distinct masks on 30 images",
                           "with another image's masks", "measured on the engine (30 images",
                           "cheapest test images (index, class, MACs): #", "dearest test images: #", "by class: ",
                           "evaluations: ", "picture", "mapgate eval --model "})
    EXPECT_TRUE(test::contains(r.out, line)) << line << "\n" << r.describe();
  // The files the pictures are made from (tools/plot_gallery.py, tools/plot_tradeoff.py).
  const auto gated = nlohmann::json::parse(test::slurp(out + "/gated-eval.json"));
  EXPECT_EQ(gated.at("per_example").at("macs").size(), 30u);
  EXPECT_EQ(gated.at("model"), gated_ + "/checkpoint.pt");
  EXPECT_EQ(nlohmann::json::parse(test::slurp(out + "/gated-curve.json")).at("curve").size(), 5u);
  const auto dense = nlohmann::json::parse(test::slurp(out + "/dense-eval.json"));
  EXPECT_EQ(dense.at("macs_mean"), gated.at("macs_dense")) << "a dense point for the trade-off plot";
}

TEST_F(Demo, TrainFineTunesGatesOntoTheDenseRunAndShowsThem) {
  const std::string out = dir_ / "demo";
  const CliResult r = run_mapgate(dir_, "demo --train --data " + shell_quote(data_) + " --dense " + shell_quote(dense_) +
                                            " --out " + shell_quote(out) + " --train-limit 60 --threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(out) / "run" / "checkpoint.pt"));
  EXPECT_TRUE(test::contains(r.out, "gated  " + out + "/run")) << r.describe();
}

TEST_F(Demo, MissingShippedModelNamesTheFlag) {
  // Each call its own --out: the default, mapgate-demo in the shared working directory, is
  // locked by a demo, and other tests run demos in parallel.
  const std::string out = " --out " + shell_quote(dir_ / "refused");
  const CliResult r = run_mapgate(dir_, "demo --data " + shell_quote(data_) + " --dense " + shell_quote(dir_ / "none") + out);
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_TRUE(test::contains(r.err, "--dense")) << r.describe();
  const CliResult swapped =
      run_mapgate(dir_, "demo --data " + shell_quote(data_) + " --dense " + shell_quote(gated_) + out);
  EXPECT_EQ(swapped.exit_code, 2) << swapped.describe();
  EXPECT_TRUE(test::contains(swapped.err, "is gated")) << swapped.describe();
  EXPECT_FALSE(std::filesystem::exists(dir_ / "refused")) << "a refused demo created its --out";
}

}  // namespace
}  // namespace mapgate

// The `mapgate` command line (docs/design.md §7): help texts, JSON outputs, exit codes
// (0 ok, 1 runtime error, 2 usage error) and one-line errors, by running the built
// binary (MAPGATE_BINARY) on a tiny CIFAR-format fixture written here.
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/macs.h"
#include "cli_runner.h"
#include "synthetic_data.h"
#include "text_checks.h"

namespace mapgate {
namespace {

namespace fs = std::filesystem;
using test::CliResult;
using test::contains;
using test::one_line;
using test::run_mapgate;
using test::ScratchDir;
using test::shell_quote;
using test::write_cifar_fixture;

nlohmann::json parse_json(const CliResult& r) {
  try {
    return nlohmann::json::parse(r.out);
  } catch (const nlohmann::json::exception& e) {
    ADD_FAILURE() << "stdout is not JSON (" << e.what() << ")\n" << r.describe();
    return nullptr;
  }
}

class Cli : public ::testing::Test {
 protected:
  ScratchDir dir_;
};

TEST_F(Cli, HelpListsSubcommands) {
  const CliResult r = run_mapgate(dir_, "--help");
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  for (const char* sub : {"data", "train", "eval", "flops", "demo"})
    EXPECT_TRUE(contains(r.out, sub)) << sub << " missing\n" << r.describe();
}

TEST_F(Cli, EverySubcommandsHelpShowsAnExample) {
  for (const char* sub : {"data", "data fetch", "data verify", "train", "eval", "flops", "export", "bench", "infer",
                          "demo"}) {
    const CliResult r = run_mapgate(dir_, std::string(sub) + " --help");
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_TRUE(contains(r.out, "Examples:\n  mapgate " + std::string(sub).substr(0, 4))) << sub << "\n" << r.describe();
  }
}

TEST_F(Cli, TrainHelpShowsDefaults) {
  const CliResult r = run_mapgate(dir_, "train --help");
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  for (const char* flag : {"--batch INT=64", "--lr FLOAT=0.1", "--depth INT=40", "--growth INT=12",
                           "--epochs INT=300", "--out", "--resume", "--seed", "--threads"})
    EXPECT_TRUE(contains(r.out, flag)) << flag << " missing\n" << r.describe();
}

TEST_F(Cli, FlopsJsonDenseNet40) {
  const CliResult r = run_mapgate(dir_, "flops --depth 40 --growth 12 --json");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const auto j = parse_json(r);
  EXPECT_EQ(j["params"], 1019722) << r.out;
  EXPECT_EQ(j["macs"], 264812928) << r.out;
}

TEST_F(Cli, FlopsJsonDenseNetBC100) {
  const CliResult r = run_mapgate(dir_, "flops --depth 100 --bc --json");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(parse_json(r)["params"], 769162) << r.out;
}

TEST_F(Cli, FlopsTableHasTotal) {
  const CliResult r = run_mapgate(dir_, "flops");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_TRUE(contains(r.out, "total: 1019722 parameters, 264812928 MACs")) << r.describe();
}

TEST_F(Cli, UnknownFlagIsUsageErrorNamingIt) {
  const CliResult r = run_mapgate(dir_, "flops --bogus-flag 3");
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_TRUE(one_line(r.err)) << r.describe();
  EXPECT_TRUE(contains(r.err, "--bogus-flag")) << r.describe();
}

TEST_F(Cli, BadDepthIsUsageErrorNamingFlag) {
  const CliResult r = run_mapgate(dir_, "flops --depth 41");
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_TRUE(one_line(r.err)) << r.describe();
  EXPECT_TRUE(contains(r.err, "--depth 41")) << r.describe();
}

TEST_F(Cli, NoSubcommandIsUsageError) {
  const CliResult r = run_mapgate(dir_, "");
  EXPECT_EQ(r.exit_code, 2) << r.describe();
}

TEST_F(Cli, EvalMissingModelNamesFile) {
  const CliResult r = run_mapgate(dir_, "eval --model /nonexistent/run --threads 1");
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_TRUE(one_line(r.err)) << r.describe();
  EXPECT_TRUE(contains(r.err, "/nonexistent/run")) << r.describe();
}

TEST_F(Cli, EvalCorruptCheckpointNamesFile) {
  const std::string bad = dir_ / "corrupt.pt";
  {
    std::ofstream out(bad, std::ios::binary);
    for (int i = 0; i < 5000; ++i) out.put(static_cast<char>((i * 131 + 7) % 251));
  }
  const CliResult r = run_mapgate(dir_, "eval --model " + shell_quote(bad) + " --threads 1");
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_TRUE(one_line(r.err)) << r.describe();
  EXPECT_TRUE(contains(r.err, bad)) << r.describe();
}

TEST_F(Cli, DataVerifyMissingDirectoryNamesIt) {
  const std::string missing = dir_ / "no_such_dir";
  const CliResult r = run_mapgate(dir_, "data verify --dataset cifar10 --data " + shell_quote(missing));
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_TRUE(one_line(r.err)) << r.describe();
  EXPECT_TRUE(contains(r.err, missing)) << r.describe();
}

TEST_F(Cli, TrainEvalFlopsOnTinyFixture) {
  const std::string data = dir_ / "cifar", run = dir_ / "run";
  write_cifar_fixture(data, /*per_batch=*/20, /*test=*/50);

  const CliResult verify = run_mapgate(dir_, "data verify --dataset cifar10 --data " + shell_quote(data) + " --json");
  ASSERT_EQ(verify.exit_code, 0) << verify.describe();
  const auto v = parse_json(verify);
  EXPECT_EQ(v["train"], 100);
  EXPECT_EQ(v["test"], 50);
  EXPECT_EQ(v["classes"], 10);
  EXPECT_EQ(v["checksums_match"], false);  // not the official files

  const CliResult train = run_mapgate(dir_, "train --data " + shell_quote(data) + " --out " + shell_quote(run) +
                                                " --depth 10 --growth 4 --epochs 1 --threads 1 --seed 2");
  ASSERT_EQ(train.exit_code, 0) << train.describe();
  EXPECT_TRUE(fs::exists(fs::path(run) / "checkpoint.pt"));
  EXPECT_TRUE(fs::exists(fs::path(run) / "config.json"));
  EXPECT_TRUE(fs::exists(fs::path(run) / "metrics.jsonl"));

  // Training again into the same --out without --resume is a usage error.
  const CliResult again = run_mapgate(dir_, "train --data " + shell_quote(data) + " --out " + shell_quote(run) +
                                                " --depth 10 --growth 4 --epochs 1 --threads 1");
  EXPECT_EQ(again.exit_code, 2) << again.describe();
  EXPECT_TRUE(one_line(again.err) && contains(again.err, run)) << again.describe();

  const CliResult eval = run_mapgate(dir_, "eval --model " + shell_quote(run) + " --data " + shell_quote(data) +
                                               " --json --threads 1");
  ASSERT_EQ(eval.exit_code, 0) << eval.describe();
  const auto e = parse_json(eval);
  EXPECT_EQ(e["examples"], 50) << eval.out;
  ASSERT_TRUE(e["accuracy"].is_number()) << eval.out;
  EXPECT_GE(e["accuracy"].get<double>(), 0.0);
  EXPECT_LE(e["accuracy"].get<double>(), 1.0);

  const std::string eval_run = "eval --model " + shell_quote(run) + " --data " + shell_quote(data) + " --threads 1";
  const CliResult per = run_mapgate(dir_, eval_run + " --json --per-example");
  ASSERT_EQ(per.exit_code, 0) << per.describe();
  const auto p = parse_json(per);
  ASSERT_TRUE(p.contains("per_example") && p.at("per_example").contains("label")) << per.out;
  EXPECT_EQ(p.at("per_example").at("label").size(), 50u) << per.out;
  EXPECT_EQ(p.at("per_example").at("prediction").size(), 50u) << per.out;
  EXPECT_FALSE(p.at("per_example").contains("mask")) << per.out;  // a dense model has no masks
  const CliResult text = run_mapgate(dir_, eval_run + " --per-example");
  EXPECT_EQ(text.exit_code, 2) << text.describe();
  EXPECT_TRUE(one_line(text.err) && contains(text.err, "--per-example: only with --json")) << text.describe();

  DenseNetConfig depth10;
  depth10.depth = 10;
  depth10.growth = 4;
  const ModelCost expected = total_cost(densenet_layer_costs(depth10));
  const CliResult flops = run_mapgate(dir_, "flops --model " + shell_quote(run) + " --json");
  ASSERT_EQ(flops.exit_code, 0) << flops.describe();
  const auto f = parse_json(flops);
  EXPECT_EQ(f["params"], expected.params) << flops.out;
  EXPECT_EQ(f["macs"], expected.macs) << flops.out;
  const CliResult flops_direct = run_mapgate(dir_, "flops --depth 10 --growth 4 --json");
  ASSERT_EQ(flops_direct.exit_code, 0) << flops_direct.describe();
  EXPECT_EQ(parse_json(flops_direct)["macs"], expected.macs);
}

TEST_F(Cli, VerifyRealCifar10FromEnvironment) {
  const char* env = std::getenv("MAPGATE_DATA");
  if (!env || !fs::exists(fs::path(env) / "data_batch_1.bin.gz"))
    GTEST_SKIP() << "MAPGATE_DATA does not point at a CIFAR-10 directory with data_batch_1.bin.gz";
  // No --data: the command must find the directory through MAPGATE_DATA.
  const CliResult r = run_mapgate(dir_, "data verify --json");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const auto j = parse_json(r);
  EXPECT_EQ(j["train"], 50000) << r.out;
  EXPECT_EQ(j["test"], 10000) << r.out;
  EXPECT_EQ(j["classes"], 10) << r.out;
  EXPECT_EQ(j["checksums_match"], true) << r.out;
}

}  // namespace
}  // namespace mapgate

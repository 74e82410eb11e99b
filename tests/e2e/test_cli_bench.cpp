// `mapgate bench` and `mapgate export` through the built binary (MAPGATE_BINARY):
// the docs/design.md §7 bench keys on random weights with engine/LibTorch agreement, an
// exported tiny trained run that the engine loads, and exit 1 for a missing model.
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "cli_runner.h"
#include "synthetic_data.h"
#include "train/trainer.h"

namespace mapgate {
namespace {

using test::run_mapgate;
using test::shell_quote;

TEST(CliBench, RandomWeightsJson) {
  test::ScratchDir dir;
  const auto r = run_mapgate(dir, "bench --random-weights --depth 10 --growth 4 --keep 0.5 --batch 1 "
                                  "--threads 1 --repeats 2 --images 8 --json");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const auto j = nlohmann::json::parse(r.out);
  for (const char* key : {"libtorch_dense_ms", "engine_dense_ms", "engine_gated_ms", "macs_ratio", "max_abs_diff"}) {
    ASSERT_TRUE(j.contains(key)) << key << "\n" << r.out;
    EXPECT_TRUE(j[key].is_number()) << key;
  }
  EXPECT_LE(j["max_abs_diff"].get<double>(), 1e-4) << r.out;
  EXPECT_GT(j["macs_ratio"].get<double>(), 1.2) << r.out;  // half the maps kept
  // Executed MACs: the transitions' 1x1 convolutions run after pooling, so fewer than counted.
  EXPECT_GT(j["macs_executed_dense"].get<double>(), 0.0) << r.out;
  EXPECT_LT(j["macs_executed_dense"].get<double>(), j["macs_dense"].get<double>()) << r.out;
  EXPECT_GT(j["macs_executed_gated_mean"].get<double>(), 0.0) << r.out;
  EXPECT_LT(j["macs_executed_gated_mean"].get<double>(), j["macs_gated_mean"].get<double>()) << r.out;
  EXPECT_GT(j["engine_gated_ms"].get<double>(), 0.0);
  ASSERT_EQ(j["runs"].size(), 1u) << r.out;
  EXPECT_EQ(j["runs"][0]["batch"], 1);
  EXPECT_EQ(j["runs"][0]["threads"], 1);
  EXPECT_EQ(j["libtorch_device"], "cpu");
}

TEST(CliBench, UsageErrors) {
  test::ScratchDir dir;
  EXPECT_EQ(run_mapgate(dir, "bench --depth 10 --growth 4").exit_code, 2);
  EXPECT_EQ(run_mapgate(dir, "bench --random-weights --depth 10 --growth 4 --keep 1.5").exit_code, 2);
  EXPECT_EQ(run_mapgate(dir, "bench --random-weights --depth 11 --growth 4").exit_code, 2);
}

TEST(CliExport, TrainedRunLoadsInEngine) {
  test::ScratchDir dir;
  TrainConfig c;
  c.dataset = "quadrant-blobs";
  c.out_dir = dir / "run";
  c.model.depth = 10;
  c.model.growth = 4;
  c.epochs = 1;
  c.batch = 16;
  c.threads = 1;
  c.augment = false;
  c.gates = Gates::kReinforce;
  train(c, test::make_quadrant_splits(32, 8, 12, 3), nullptr);
  const std::string file = dir / "model.mgw";
  const auto r = run_mapgate(dir, "export --model " + shell_quote(dir / "run") + " --out " + shell_quote(file));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const Engine engine = Engine::load(file);
  EXPECT_EQ(engine.config().depth, 10);
  EXPECT_EQ(engine.config().growth, 4);
  EXPECT_TRUE(engine.config().gated);
}

TEST(CliExport, MissingModelExitsOne) {
  test::ScratchDir dir;
  const auto r = run_mapgate(dir, "export --model " + shell_quote(dir / "nothing") + " --out " +
                                      shell_quote(dir / "out.mgw"));
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_NE(r.err.find("nothing"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "one line: " << r.err;
}

}  // namespace
}  // namespace mapgate

// Killed runs lose nothing (reliability issue, item 3): a CLI training run is killed
// with SIGKILL in the middle of writing a checkpoint, just before renaming one into
// place, and at random moments; after each kill the last checkpoint must load, and
// `--resume` must end with exactly the weights and metrics of an uninterrupted run of
// the same seed on one thread. The checkpoint-write moments come from an LD_PRELOAD
// library (tests/support/kill_hooks.cpp): random timing alone rarely hits them.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cli_runner.h"
#include "run_files.h"
#include "train/checkpoint.h"

namespace mapgate {
namespace {

namespace fs = std::filesystem;
using test::spawn_mapgate;
using test::wait_status;
using Clock = std::chrono::steady_clock;

bool killed_by_sigkill(int status) { return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL; }

// Epoch recorded in RUN/checkpoint.pt (0 if there is none); loading it must succeed.
int checkpoint_epoch(const std::string& run) {
  const std::string file = (fs::path(run) / kCheckpointFile).string();
  if (!fs::exists(file)) return 0;
  return Checkpoint(file).state().value("epoch", -1);
}

class KillResume : public ::testing::Test {
 protected:
  void SetUp() override { test::write_cifar_fixture(data_, /*per_batch=*/16, /*test=*/24); }

  std::vector<std::string> train_args(const std::string& run, bool resume) const {
    std::vector<std::string> a = {"train", "--data", data_, "--out", run, "--depth", "7",
                                  "--growth", "4", "--dropout", "0.1", "--epochs", "6",
                                  "--batch", "16", "--threads", "1", "--seed", "4"};
    if (resume) a.push_back("--resume");
    return a;
  }
  // Runs once more, resuming if there is a checkpoint; `kill_at` arms kill_hooks.
  pid_t start(const std::string& run, const std::string& kill_at = "") const {
    std::vector<std::string> env;
    if (!kill_at.empty())
      env = {"LD_PRELOAD=" + std::string(MAPGATE_KILL_HOOKS), "MAPGATE_KILL_AT=" + kill_at,
             // A sanitizer build's runtime would otherwise insist on being first.
             "ASAN_OPTIONS=verify_asan_link_order=0"};
    return spawn_mapgate(train_args(run, checkpoint_epoch(run) > 0), env, dir_ / "log.txt");
  }

  test::ScratchDir dir_;
  const std::string data_ = dir_ / "cifar";
};

TEST_F(KillResume, KilledAnywhereResumesToTheUninterruptedRun) {
  const std::string ref = dir_ / "ref", run = dir_ / "run";
  const auto t0 = Clock::now();
  ASSERT_EQ(wait_status(start(ref)), 0) << test::slurp(dir_ / "log.txt");
  const double ref_seconds = std::chrono::duration<double>(Clock::now() - t0).count();

  // Killed half-way through writing the epoch-2 checkpoint: epoch 1's survives.
  int status = wait_status(start(run, "write:2"));
  ASSERT_TRUE(killed_by_sigkill(status)) << "status " << status << "\n" << test::slurp(dir_ / "log.txt");
  EXPECT_EQ(checkpoint_epoch(run), 1);

  // Resumed, then killed with the next checkpoint complete but not yet renamed into place.
  status = wait_status(start(run, "rename:1"));
  ASSERT_TRUE(killed_by_sigkill(status)) << "status " << status;
  EXPECT_EQ(checkpoint_epoch(run), 1);

  // Killed at random moments (startup, training, evaluation, writing), resumed each time.
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> moment(0.0, ref_seconds);
  int kills = 0;
  for (int attempt = 0; attempt < 8; ++attempt) {
    const int epoch_before = checkpoint_epoch(run);
    const pid_t pid = start(run);
    std::this_thread::sleep_for(std::chrono::duration<double>(moment(rng)));
    ::kill(pid, SIGKILL);
    status = wait_status(pid);
    if (!killed_by_sigkill(status)) {
      ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << test::slurp(dir_ / "log.txt");
      break;  // it finished before the kill
    }
    ++kills;
    EXPECT_GE(checkpoint_epoch(run), epoch_before);  // never lost, always loadable
  }
  if (checkpoint_epoch(run) < 6) ASSERT_EQ(wait_status(start(run)), 0) << test::slurp(dir_ / "log.txt");
  RecordProperty("random_kills", kills);

  EXPECT_EQ(test::first_difference(ref, run), "");
  const auto a = test::read_metrics(ref), b = test::read_metrics(run);
  ASSERT_EQ(b.size(), a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(b[i]["epoch"], a[i]["epoch"]);
    EXPECT_EQ(b[i]["train_loss"], a[i]["train_loss"]) << "epoch " << i + 1;
    EXPECT_EQ(b[i]["test_accuracy"], a[i]["test_accuracy"]) << "epoch " << i + 1;
  }
  EXPECT_EQ(test::temporaries_in(run), std::vector<std::string>{});
}

}  // namespace
}  // namespace mapgate

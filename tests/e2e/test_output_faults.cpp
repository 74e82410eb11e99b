// Output-directory faults (reliability issue, item 5): a full disk at a checkpoint
// write and an unusable --out are reported naming the file, with exit 1, and leave the
// last good checkpoint and nothing half-written behind. A full disk is simulated with
// the file-size limit (`ulimit -f`, SIGXFSZ ignored so write() fails with EFBIG).
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "cli_runner.h"
#include "common/error.h"
#include "run_files.h"
#include "train/checkpoint.h"
#include "text_checks.h"

namespace mapgate {
namespace {

namespace fs = std::filesystem;
using test::CliResult;
using test::contains;
using test::last_line;
using test::one_line;
using test::run_mapgate;
using test::shell_quote;

class OutputFaults : public ::testing::Test {
 protected:
  void SetUp() override { test::write_cifar_fixture(data_, /*per_batch=*/16, /*test=*/24); }
  std::string train_args(const std::string& run, int epochs) const {
    return "train --data " + shell_quote(data_) + " --out " + shell_quote(run) +
           " --depth 7 --growth 4 --batch 16 --threads 1 --seed 1 --epochs " + std::to_string(epochs);
  }
  test::ScratchDir dir_;
  const std::string data_ = dir_ / "cifar";
};

TEST_F(OutputFaults, FullDiskAtCheckpointKeepsTheLastGoodOne) {
  const std::string run = dir_ / "run";
  const CliResult first = run_mapgate(dir_, train_args(run, 1));
  ASSERT_EQ(first.exit_code, 0) << first.describe();
  const std::string checkpoint = (fs::path(run) / kCheckpointFile).string();
  const auto size = fs::file_size(checkpoint);
  ASSERT_GT(size, 16 * 1024u) << "the limit below must be smaller than a checkpoint";

  // 16 KiB per file (ulimit counts 512-byte blocks): config.json, the metrics line and
  // the logs fit; the epoch-2 checkpoint does not.
  const CliResult full = run_mapgate(dir_, train_args(run, 2) + " --resume", "trap '' XFSZ; ulimit -f 32;");
  EXPECT_EQ(full.exit_code, 1) << full.describe();
  // The log's last line is the error, naming the file and the cause.
  const std::string last = last_line(full.err);
  EXPECT_TRUE(contains(last, quoted(checkpoint)) && contains(last, "File too large")) << full.describe();

  EXPECT_EQ(fs::file_size(checkpoint), size);
  EXPECT_EQ(Checkpoint(checkpoint).state().value("epoch", 0), 1);
  EXPECT_EQ(test::read_metrics(run).size(), 1u);  // epoch 2's line went with its checkpoint
  EXPECT_EQ(test::temporaries_in(run), std::vector<std::string>{});

  // With room again, --resume finishes the run.
  const CliResult again = run_mapgate(dir_, train_args(run, 2) + " --resume");
  EXPECT_EQ(again.exit_code, 0) << again.describe();
  EXPECT_EQ(test::read_metrics(run).size(), 2u);
}

TEST_F(OutputFaults, OutUnderARegularFileFailsBeforeTraining) {
  const std::string file = dir_ / "plain-file";
  std::ofstream(file) << "x";
  const CliResult r = run_mapgate(dir_, train_args(file + "/run", 1));
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_TRUE(one_line(r.err) && contains(r.err, "--out") && contains(r.err, file)) << r.describe();
  EXPECT_FALSE(contains(r.err, "epoch")) << r.describe();
}

// Root writes through directory permissions, so as root (CI) mapgate runs as nobody
// (util-linux setpriv); everything it must read is world-readable.
TEST_F(OutputFaults, ReadOnlyOutFailsBeforeTraining) {
  std::string as_user;
  if (::geteuid() == 0) {
    if (std::system("command -v setpriv >/dev/null 2>&1") != 0) GTEST_SKIP() << "root, and no setpriv";
    as_user = "setpriv --reuid=65534 --regid=65534 --clear-groups";
    const auto everyone_reads = fs::perms::others_read | fs::perms::others_exec;  // whatever the umask
    fs::permissions(dir_.path(), everyone_reads, fs::perm_options::add);
    for (const auto& entry : fs::recursive_directory_iterator(dir_.path()))
      fs::permissions(entry.path(), everyone_reads, fs::perm_options::add);
  }
  const std::string run = dir_ / "locked";
  fs::create_directories(run);
  const auto read_and_enter = fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                              fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec;
  fs::permissions(run, read_and_enter);
  const CliResult r = run_mapgate(dir_, train_args(run, 1), as_user);
  fs::permissions(run, fs::perms::owner_all);
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_TRUE(one_line(r.err) && contains(r.err, "--out") && contains(r.err, run)) << r.describe();
  EXPECT_FALSE(contains(r.err, "epoch")) << r.describe();
  EXPECT_TRUE(fs::is_empty(run)) << "nothing may be left in " << run;
}

}  // namespace
}  // namespace mapgate

// Data-parallel training on c10d/Gloo (docs/scale.md), on this machine's loopback:
// two processes give the weights of one process that averages the gradients of the same
// per-rank batches; a two-process run interrupted and resumed equals the uninterrupted
// one; a killed rank makes the other exit with one line, never hang; bad torchrun
// variables are usage errors. Runs are tiny (DenseNet-7 k=4 on 80 fixture images).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <torch/cuda.h>

#include "cli_runner.h"
#include "common/error.h"
#include "data/loader.h"
#include "run_files.h"
#include "text_checks.h"
#include "train/checkpoint.h"
#include "train/data_parallel.h"
#include "train/reinforce.h"  // split_parameters

namespace mapgate {
namespace {

namespace fs = std::filesystem;

class DataParallelRun : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!data_parallel_available()) GTEST_SKIP() << "built without Gloo (libgloo-dev)";
    test::write_cifar_fixture(data_, /*per_batch=*/16, /*test=*/24);
  }
  // A two-process run by --nproc.
  std::string train_args(const std::string& run, const std::string& extra) const {
    return "train --data " + data_ + " --out " + run +
           " --depth 7 --growth 4 --batch 8 --threads 1 --seed 5 --lr 0.05 --no-augment " + extra;
  }
  test::ScratchDir dir_;
  const std::string data_ = dir_ / "cifar";
};

// The reference of data parallelism: one process, the model initialised as the trainer
// does, each step the two ranks' batches (their loaders' shards) forward and backward in
// turn, the summed gradients halved, one SGD step.
TEST_F(DataParallelRun, TwoProcessesEqualOneAveragingTheirGradients) {
  const std::string run = dir_ / "two";
  const test::CliResult r = test::run_mapgate(dir_, train_args(run, "--epochs 1 --nproc 2"));
  ASSERT_EQ(r.exit_code, 0) << r.describe();

  const TrainedModel trained = load_trained_model(run);
  torch::manual_seed(5);
  DenseNet model(trained.config);
  model->set_masked_norm(MaskedNorm{true});
  auto [theta, phi] = split_parameters(*model);
  const double lr = test::read_metrics(run).at(0).at("lr").get<double>();  // the schedule's, at epoch 1
  torch::optim::SGD sgd(theta, torch::optim::SGDOptions(lr).momentum(0.9).nesterov(true).weight_decay(1e-4));
  const DatasetSplits data = load_dataset("cifar10", data_);
  std::vector<std::unique_ptr<Loader>> shards;
  for (int rank = 0; rank < 2; ++rank) {
    LoaderOptions o;
    o.batch_size = 8;
    o.augment = false;
    o.seed = 5;
    o.shard = rank;
    o.shards = 2;
    shards.push_back(std::make_unique<Loader>(data.train, trained.normalization, o));
    shards.back()->start_epoch(0);
  }
  model->train();
  int steps = 0;
  for (Batch batch[2]; shards[0]->next(batch[0]) && shards[1]->next(batch[1]); ++steps) {
    sgd.zero_grad();
    for (const Batch& b : batch) {
      const auto images = torch::from_blob(const_cast<float*>(b.images.data()), {b.size, 3, 32, 32});
      const auto labels = torch::from_blob(const_cast<std::int64_t*>(b.labels.data()), {b.size}, torch::kInt64);
      torch::nn::functional::cross_entropy(model->forward(images), labels).backward();
    }
    for (auto& p : theta) p.mutable_grad().div_(2);
    sgd.step();
  }
  EXPECT_EQ(steps, 5);  // 80 images, 40 per rank, batches of 8
  const auto want = model->named_parameters();
  for (const auto& p : trained.model->named_parameters())
    EXPECT_TRUE(torch::allclose(p.value(), want[p.key()], 1e-5, 1e-6)) << p.key();
  EXPECT_EQ(Checkpoint(checkpoint_path(run)).state().value("processes", 0), 2);
}

// Gated (REINFORCE with the running-mean baseline, BN recalibration): two processes
// stopped after epoch 1 and resumed equal the uninterrupted run bit for bit, metrics
// included; the resumed run may also continue on another number of processes.
TEST_F(DataParallelRun, ResumedRunEqualsUninterruptedOne) {
  const std::string gated = "--epochs 2 --gates reinforce --baseline mean --penalty 2 --bn-recal 2 --nproc 2";
  const std::string whole = dir_ / "whole", parts = dir_ / "parts", one = dir_ / "one";
  test::CliResult r = test::run_mapgate(dir_, train_args(whole, gated));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  r = test::run_mapgate(dir_, train_args(parts, gated + " --stop-after 1"));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  fs::copy(parts, one, fs::copy_options::recursive);
  r = test::run_mapgate(dir_, train_args(parts, gated + " --resume"));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(test::first_difference(whole, parts), "");
  const auto a = test::read_metrics(whole), b = test::read_metrics(parts);
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(b.size(), 2u);
  for (const char* key : {"train_loss", "train_accuracy", "test_accuracy", "test_loss", "train_kept_fraction"})
    EXPECT_EQ(a[1].value(key, -1.0), b[1].value(key, -2.0)) << key;

  r = test::run_mapgate(dir_, train_args(one, "--epochs 2 --gates reinforce --baseline mean --penalty 2 "
                                              "--bn-recal 2 --resume"));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(test::read_metrics(one).size(), 2u);
}

// torchrun's way: each rank started by hand. Rank 1 is killed once rank 0 has
// checkpointed an epoch (so the group had formed); rank 0 must exit 1 by itself, long
// before its 30-minute collective timeout, its last line naming itself and what failed.
TEST_F(DataParallelRun, KilledRankMakesTheOtherExitNamingIt) {
  const std::string run = dir_ / "killed";
  const std::string port = "MASTER_PORT=" + std::to_string(29400 + ::getpid() % 500);
  const auto args = [&] {
    return std::vector<std::string>{"train", "--data", data_, "--out", run, "--depth", "7", "--growth", "4",
                                    "--batch", "8", "--threads", "1", "--epochs", "100000", "--seed", "5"};
  };
  const std::vector<std::string> env0 = {"WORLD_SIZE=2", "RANK=0", "MASTER_ADDR=127.0.0.1", port};
  const std::vector<std::string> env1 = {"WORLD_SIZE=2", "RANK=1", "MASTER_ADDR=127.0.0.1", port};
  const pid_t rank0 = test::spawn_mapgate(args(), env0, dir_ / "rank0.txt");
  const pid_t rank1 = test::spawn_mapgate(args(), env1, dir_ / "rank1.txt");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  while (test::read_metrics(run).empty() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ::kill(rank1, SIGKILL);
  test::wait_status(rank1);
  ASSERT_FALSE(test::read_metrics(run).empty()) << test::slurp(dir_ / "rank0.txt");
  int status = 0;
  pid_t done = 0;
  while (done == 0 && std::chrono::steady_clock::now() < deadline + std::chrono::minutes(2)) {
    done = ::waitpid(rank0, &status, WNOHANG);
    if (done == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (done == 0) {
    ::kill(rank0, SIGKILL);
    test::wait_status(rank0);
    FAIL() << "rank 0 still running 2 minutes after rank 1 was killed";
  }
  const std::string log = test::slurp(dir_ / "rank0.txt");
  ASSERT_TRUE(WIFEXITED(status)) << log;
  EXPECT_EQ(WEXITSTATUS(status), 1) << log;
  const std::string last = test::last_line(log);
  EXPECT_NE(last.find("rank 0 of 2: "), std::string::npos) << log;
  EXPECT_NE(last.find(" failed (another process exited"), std::string::npos) << log;
}

// --nproc names the worker that failed and keeps its exit status: rank 0 refuses an
// existing run directory without --resume (a usage error), the other rank is stopped.
TEST_F(DataParallelRun, LauncherNamesTheFailedRank) {
  const std::string run = dir_ / "run";
  ASSERT_EQ(test::run_mapgate(dir_, train_args(run, "--epochs 1 --nproc 2")).exit_code, 0);
  const test::CliResult r = test::run_mapgate(dir_, train_args(run, "--epochs 1 --nproc 2"));
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_NE(r.err.find("--out"), std::string::npos) << r.err;
  EXPECT_NE(test::last_line(r.err).find("--nproc 2: rank 0 exited with status 2; the other ranks were stopped"),
            std::string::npos)
      << r.err;
}

// The torchrun variables are checked before anything runs: exit 2, the variable named.
TEST_F(DataParallelRun, BadWorldVariablesAreUsageErrors) {
  const std::map<std::string, std::string> cases = {
      {"WORLD_SIZE=0", "WORLD_SIZE"},
      {"WORLD_SIZE=two RANK=0 MASTER_PORT=29500", "WORLD_SIZE"},
      {"WORLD_SIZE=2 RANK=2 MASTER_PORT=29500", "RANK"},
      {"WORLD_SIZE=2 MASTER_PORT=29500", "RANK"},
      {"WORLD_SIZE=2 RANK=0 MASTER_PORT=70000", "MASTER_PORT"},
      {"WORLD_SIZE=2 RANK=0 MASTER_PORT=", "MASTER_PORT"},
  };
  for (const auto& [env, variable] : cases) {
    const test::CliResult r = test::run_mapgate(dir_, train_args(dir_ / "bad", "--epochs 1"), env);
    EXPECT_EQ(r.exit_code, 2) << env << "\n" << r.describe();
    EXPECT_NE(r.err.find("environment: " + variable), std::string::npos) << env << "\n" << r.err;
    EXPECT_FALSE(fs::exists(dir_ / "bad")) << env;
  }
  const test::CliResult r = test::run_mapgate(dir_, train_args(dir_ / "bad", "--epochs 1 --nproc 2"),
                                              "WORLD_SIZE=2 RANK=0 MASTER_PORT=29500");
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_NE(r.err.find("use one"), std::string::npos) << r.err;
}

// Two ranks on the GPU of the machine (the device machine has one): --device cuda makes
// every rank use cuda:(LOCAL_RANK mod 1), auto picks Gloo (NCCL refuses two ranks on one
// GPU), whose collectives take the CUDA gradients through the host; the weights equal a
// two-process CPU run's to float tolerance.
TEST_F(DataParallelRun, TwoProcessesOnOneGpuMatchTheCpu) {
  if (torch::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const std::string cpu = dir_ / "cpu", gpu = dir_ / "gpu";
  ASSERT_EQ(test::run_mapgate(dir_, train_args(cpu, "--epochs 1 --nproc 2")).exit_code, 0);
  const test::CliResult r = test::run_mapgate(dir_, train_args(gpu, "--epochs 1 --nproc 2 --device cuda"));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  if (torch::cuda::device_count() == 1) EXPECT_NE(r.err.find("2 processes, c10d gloo"), std::string::npos) << r.err;
  const TrainedModel a = load_trained_model(cpu), b = load_trained_model(gpu);
  const auto pb = b.model->named_parameters();
  for (const auto& p : a.model->named_parameters())
    EXPECT_TRUE(torch::allclose(p.value(), pb[p.key()], 1e-3, 1e-4)) << p.key();
}

// --dist-backend is checked in one process too: nccl on the CPU is a usage error, an
// unknown name as well; rank 0 names the backend it runs on.
TEST_F(DataParallelRun, DistBackendFlag) {
  test::CliResult r = test::run_mapgate(dir_, train_args(dir_ / "nccl", "--epochs 1 --dist-backend nccl"));
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_NE(test::last_line(r.err).find("--dist-backend nccl"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "nccl"));
  r = test::run_mapgate(dir_, train_args(dir_ / "nccl", "--epochs 1 --nproc 2 --dist-backend nccl"));
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_TRUE(test::one_line(r.err)) << "refused once, not once per rank: " << r.err;
  r = test::run_mapgate(dir_, train_args(dir_ / "mpi", "--epochs 1 --dist-backend mpi"));
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_NE(r.err.find("--dist-backend"), std::string::npos) << r.err;
  r = test::run_mapgate(dir_, train_args(dir_ / "gloo", "--epochs 1 --train-limit 32 --nproc 2 --dist-backend gloo"));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.err.find("2 processes, c10d gloo\n"), std::string::npos) << r.err;
}

TEST(ResolveDistBackend, AutoPicksNcclOnlyForGpusOfTheirOwn) {
  const c10::Device cpu(c10::DeviceType::CPU), gpu(c10::DeviceType::CUDA, 1);
  const DistBackend nccl_if_built = nccl_available() ? DistBackend::kNccl : DistBackend::kGloo;
  EXPECT_EQ(resolve_dist_backend(DistBackend::kAuto, cpu, 2, 0), DistBackend::kGloo);
  EXPECT_EQ(resolve_dist_backend(DistBackend::kAuto, cpu, 2, 8), DistBackend::kGloo);
  EXPECT_EQ(resolve_dist_backend(DistBackend::kAuto, gpu, 2, 2), nccl_if_built);
  EXPECT_EQ(resolve_dist_backend(DistBackend::kAuto, gpu, 1, 1), nccl_if_built);
  EXPECT_EQ(resolve_dist_backend(DistBackend::kAuto, gpu, 3, 2), DistBackend::kGloo);  // two ranks would share one
  EXPECT_EQ(resolve_dist_backend(DistBackend::kGloo, gpu, 2, 2), DistBackend::kGloo);
  EXPECT_THROW(resolve_dist_backend(DistBackend::kNccl, cpu, 2, 2), UsageError);
  if (nccl_available())
    EXPECT_EQ(resolve_dist_backend(DistBackend::kNccl, gpu, 2, 2), DistBackend::kNccl);
  else
    EXPECT_THROW(resolve_dist_backend(DistBackend::kNccl, gpu, 2, 2), Error);
}

// A group of one rank through the backend's collectives: values of several element types
// and devices come back in place (the sum over one rank, rank 0's own values). NCCL's
// needs a GPU and a build with NCCL (the device machine's PyTorch); Gloo runs here.
void expect_one_rank_collectives_keep_values(DistBackend backend, c10::Device device) {
  WorldSettings world;
  world.master_port = 0;  // the store's server takes a free port
  DataParallel group(world, std::chrono::seconds(60), backend, device);
  const torch::Tensor weights = torch::arange(6, torch::TensorOptions(device)).to(torch::kFloat).view({2, 3});
  const torch::Tensor counts = torch::tensor({7, 9}, torch::TensorOptions(device).dtype(torch::kInt64));
  const torch::Tensor host = torch::full({1}, 0.25, torch::kFloat64);
  group.sum({weights, counts, host}, "summing");
  group.broadcast({weights, counts, host}, "broadcasting");
  EXPECT_TRUE(weights.cpu().equal(torch::arange(6).to(torch::kFloat).view({2, 3})));
  EXPECT_TRUE(counts.cpu().equal(torch::tensor({7, 9}, torch::kInt64)));
  EXPECT_EQ(host.item<double>(), 0.25);
  EXPECT_EQ(weights.device(), device);
  EXPECT_TRUE(host.device().is_cpu());
}

TEST(OneRankGroup, GlooKeepsValues) {
  if (!data_parallel_available()) GTEST_SKIP() << "built without Gloo (libgloo-dev)";
  expect_one_rank_collectives_keep_values(DistBackend::kGloo, c10::Device(c10::DeviceType::CPU));
}

TEST(OneRankGroup, NcclKeepsValues) {
  if (!nccl_available() || torch::cuda::device_count() == 0) GTEST_SKIP() << "no NCCL in this build, or no GPU";
  expect_one_rank_collectives_keep_values(DistBackend::kNccl, c10::Device(c10::DeviceType::CUDA, 0));
}

// world_from_environment with `env` as the environment.
WorldSettings world_of(const std::map<std::string, std::string>& env) {
  return world_from_environment([&env](const char* name) -> const char* {
    const auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

TEST(WorldFromEnvironment, ReadsTorchrunVariables) {
  const WorldSettings w = world_of({{"WORLD_SIZE", "4"}, {"RANK", "3"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"},
                                    {"MASTER_ADDR", "node7"}, {"MASTER_PORT", "1234"}});
  EXPECT_EQ(w.size, 4);
  EXPECT_EQ(w.rank, 3);
  EXPECT_EQ(w.local_rank, 1);
  EXPECT_EQ(w.local_size, 2);
  EXPECT_EQ(w.master_addr, "node7");
  EXPECT_EQ(w.master_port, 1234);
  const WorldSettings alone = world_of({});
  EXPECT_EQ(alone.size, 1);
  EXPECT_EQ(alone.rank, 0);
  EXPECT_EQ(alone.local_size, 1);
}

// LOCAL_RANK lies below LOCAL_WORLD_SIZE where it is given, below WORLD_SIZE otherwise.
TEST(WorldFromEnvironment, LocalRankWithinTheLocalProcesses) {
  auto world = [](std::map<std::string, std::string> env) {
    env.insert({{"WORLD_SIZE", "4"}, {"RANK", "3"}, {"MASTER_PORT", "1234"}});
    return world_of(env);
  };
  EXPECT_EQ(world({{"LOCAL_RANK", "3"}}).local_rank, 3);
  EXPECT_THROW(world({{"LOCAL_RANK", "2"}, {"LOCAL_WORLD_SIZE", "2"}}), UsageError);
  EXPECT_THROW(world({{"LOCAL_WORLD_SIZE", "5"}}), UsageError);
  EXPECT_THROW(world({{"LOCAL_WORLD_SIZE", "0"}}), UsageError);
}

}  // namespace
}  // namespace mapgate

// --device (docs/scale.md): a CUDA request where there is none is one line and exit 1,
// a malformed one a usage error; where LibTorch has a GPU, a run there matches the CPU's.
#include <gtest/gtest.h>

#include <torch/cuda.h>

#include <string>

#include "cli_runner.h"
#include "run_files.h"
#include "text_checks.h"
#include "train/device.h"

namespace mapgate {
namespace {

class DeviceFlag : public ::testing::Test {
 protected:
  void SetUp() override { test::write_cifar_fixture(data_, /*per_batch=*/16, /*test=*/24); }
  std::string train_args(const std::string& run, const std::string& device) const {
    return "train --data " + data_ + " --out " + run + " --depth 7 --growth 4 --batch 16 --threads 1 --seed 2 "
           "--epochs 1 --no-augment --device " + device;
  }
  test::ScratchDir dir_;
  const std::string data_ = dir_ / "cifar";
};

TEST_F(DeviceFlag, MalformedIsUsageError) {
  for (const std::string bad : {"gpu", "cuda:", "cuda:x", "CPU", "cuda:0:1"}) {
    const test::CliResult r = test::run_mapgate(dir_, train_args(dir_ / "run", bad));
    EXPECT_EQ(r.exit_code, 2) << bad << "\n" << r.describe();
    EXPECT_NE(r.err.find("--device"), std::string::npos) << r.err;
  }
  EXPECT_THROW(check_device_flag("--device", "cuda:-1"), UsageError);
  EXPECT_NO_THROW(check_device_flag("--device", "cuda:12"));
  EXPECT_TRUE(open_device("--device", "cpu").is_cpu());
}

TEST_F(DeviceFlag, CudaWithoutGpuIsOneLineAndExit1) {
  if (torch::cuda::device_count() > 0) GTEST_SKIP() << "this machine has a GPU";
  const test::CliResult r = test::run_mapgate(dir_, train_args(dir_ / "run", "cuda"));
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_TRUE(test::one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("--device cuda: no CUDA device here"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "run")) << "nothing is written before the device is checked";
  const test::CliResult two = test::run_mapgate(dir_, train_args(dir_ / "run", "cuda") + " --nproc 2");
  EXPECT_EQ(two.exit_code, 1) << two.describe();
  EXPECT_TRUE(test::one_line(two.err)) << "refused once, not once per rank: " << two.err;
  ASSERT_EQ(test::run_mapgate(dir_, train_args(dir_ / "cpu", "cpu")).exit_code, 0);
  const test::CliResult e = test::run_mapgate(dir_, "eval --data " + data_ + " --model " + (dir_ / "cpu") +
                                                        " --device cuda:1");
  EXPECT_EQ(e.exit_code, 1) << e.describe();
  EXPECT_TRUE(test::one_line(e.err)) << e.err;
}

TEST_F(DeviceFlag, BenchCudaWithoutGpuIsOneLineAndExit1) {
  const std::string bench = "bench --random-weights --depth 7 --growth 4 --batch 1 --threads 1 --repeats 1 "
                            "--images 2 --json --device ";
  EXPECT_EQ(test::run_mapgate(dir_, bench + "gpu").exit_code, 2);
  if (torch::cuda::device_count() > 0) GTEST_SKIP() << "this machine has a GPU";
  const test::CliResult r = test::run_mapgate(dir_, bench + "cuda");
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_TRUE(test::one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("--device cuda: no CUDA device here"), std::string::npos) << r.err;
}

// Batches for a GPU are pinned on the loader thread (make_batch_stage); on the CPU there is
// no stage, and images_on is a view of the batch.
TEST(BatchStage, PinsForAGpuOnly) {
  Dataset d;
  d.channels = 1;
  d.height = d.width = 2;
  Batch batch;
  batch.size = 2;
  batch.images = {1, 2, 3, 4, 5, 6, 7, 8};
  batch.labels = {3, 1};
  EXPECT_FALSE(make_batch_stage(d, torch::kCPU));
  const torch::Tensor view = images_on(batch, d, torch::kCPU);
  EXPECT_EQ(view.data_ptr<float>(), batch.images.data());
  if (torch::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const torch::Device gpu(torch::kCUDA, 0);
  make_batch_stage(d, gpu)(batch);
  ASSERT_TRUE(batch.staged.has_value());
  batch.images.assign(8, 0.0f);  // the copy to the GPU must come from the pinned copy
  const torch::Tensor on_gpu = images_on(batch, d, gpu).cpu();
  EXPECT_EQ(on_gpu.sum().item<float>(), 36.0f);
  EXPECT_EQ(labels_on(batch, gpu).cpu()[0].item<std::int64_t>(), 3);
}

// On a machine with a GPU (e.g. the lent device machine): one epoch on cuda gives the
// CPU run's weights to float tolerance, and eval there the CPU's accuracy.
TEST_F(DeviceFlag, CudaRunMatchesCpuRun) {
  if (torch::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  ASSERT_EQ(test::run_mapgate(dir_, train_args(dir_ / "cpu", "cpu")).exit_code, 0);
  const test::CliResult r = test::run_mapgate(dir_, train_args(dir_ / "gpu", "cuda"));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const TrainedModel a = load_trained_model(dir_ / "cpu"), b = load_trained_model(dir_ / "gpu");
  const auto pb = b.model->named_parameters();
  for (const auto& p : a.model->named_parameters())
    EXPECT_TRUE(torch::allclose(p.value(), pb[p.key()], 1e-3, 1e-4)) << p.key();
  const auto ma = test::read_metrics(dir_ / "cpu"), mb = test::read_metrics(dir_ / "gpu");
  EXPECT_NEAR(ma.at(0).at("test_loss").get<double>(), mb.at(0).at("test_loss").get<double>(), 1e-3);
}

}  // namespace
}  // namespace mapgate

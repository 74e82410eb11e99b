// --device and host-to-device batches; see device.h.
#include "train/device.h"

#include <torch/cuda.h>
#include <torch/nn/module.h>

#include <cstdlib>

#include "common/error.h"

namespace mapgate {
namespace {

// N of "cuda:N", -1 for "cuda"; -2 when `value` is not a CUDA device name.
int cuda_index(const std::string& value) {
  if (value == "cuda") return -1;
  if (value.rfind("cuda:", 0) != 0 || value.size() == 5 || value.size() > 9) return -2;
  for (std::size_t i = 5; i < value.size(); ++i)
    if (value[i] < '0' || value[i] > '9') return -2;
  return std::atoi(value.c_str() + 5);
}

// What make_batch_stage keeps in Batch::staged.
struct PinnedBatch {
  torch::Tensor images, labels;
};

torch::Tensor host_images(Batch& batch, const Dataset& data) {
  return torch::from_blob(batch.images.data(), {batch.size, data.channels, data.height, data.width});
}

torch::Tensor host_labels(Batch& batch) { return torch::from_blob(batch.labels.data(), {batch.size}, torch::kInt64); }

const PinnedBatch* pinned_of(const Batch& batch) { return std::any_cast<PinnedBatch>(&batch.staged); }

torch::Tensor onto(const torch::Tensor& host, torch::Device device) {
  if (device.is_cpu()) return host;
  const torch::Tensor pinned = host.is_pinned() ? host : host.pin_memory();
  return pinned.to(device, /*non_blocking=*/true);
}

}  // namespace

void check_device_flag(const char* flag, const std::string& value) {
  if (value != "cpu" && cuda_index(value) < -1)
    throw UsageError(std::string(flag) + " " + quoted(value) + ": expected cpu, cuda or cuda:N");
}

int cuda_device_count() { return static_cast<int>(torch::cuda::device_count()); }

torch::Device open_device(const char* flag, const std::string& value, int local_rank) {
  check_device_flag(flag, value);
  if (value == "cpu") return torch::kCPU;
  const int index = cuda_index(value);
  const int count = cuda_device_count();
  if (count == 0)
    throw Error(std::string(flag) + " " + value +
                ": no CUDA device here (this LibTorch has no CUDA, or it sees no GPU); use --device cpu");
  if (index >= count)
    throw Error(std::string(flag) + " " + value + ": this machine has " + std::to_string(count) +
                " CUDA device(s), cuda:0 to cuda:" + std::to_string(count - 1));
  return torch::Device(torch::kCUDA, static_cast<torch::DeviceIndex>(index < 0 ? local_rank % count : index));
}

torch::Device device_of(const torch::nn::Module& module) {
  const auto parameters = module.parameters();
  return parameters.empty() ? torch::Device(torch::kCPU) : parameters.front().device();
}

std::function<void(Batch&)> make_batch_stage(const Dataset& data, torch::Device device) {
  if (device.is_cpu()) return {};
  return [&data](Batch& batch) {
    batch.staged = PinnedBatch{host_images(batch, data).pin_memory(), host_labels(batch).pin_memory()};
  };
}

torch::Tensor images_on(Batch& batch, const Dataset& data, torch::Device device) {
  const PinnedBatch* pinned = pinned_of(batch);  // only a GPU's loader stages batches
  return onto(pinned ? pinned->images : host_images(batch, data), device);
}

torch::Tensor labels_on(Batch& batch, torch::Device device) {
  const PinnedBatch* pinned = pinned_of(batch);
  return onto(pinned ? pinned->labels : host_labels(batch), device);
}

}  // namespace mapgate

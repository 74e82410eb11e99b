// Where LibTorch computes (--device cpu|cuda|cuda:N, docs/scale.md): the flag, and the
// loader's host batches onto the device. The engine (src/engine) is CPU-only and never
// sees this.
#pragma once

#include <functional>
#include <string>

#include <torch/types.h>

#include "data/loader.h"

namespace torch::nn {
class Module;
}  // namespace torch::nn

namespace mapgate {

// Checks the form only: "cpu", "cuda" or "cuda:N"; UsageError naming `flag` otherwise.
void check_device_flag(const char* flag, const std::string& value);
// The device `value` names, after check_device_flag. Error (exit 1) when it is a CUDA
// device this LibTorch or machine does not have: one line naming the flag and the count.
// "cuda" without an index is cuda:(local_rank mod the GPUs), so that the processes of one
// machine (LOCAL_RANK) spread over its GPUs, as DDP's set_device(LOCAL_RANK) does.
torch::Device open_device(const char* flag, const std::string& value, int local_rank = 0);
// The CUDA devices LibTorch sees here (0 without CUDA).
int cuda_device_count();
// The device of a module's first parameter (CPU for a module without parameters).
torch::Device device_of(const torch::nn::Module& module);

// The loader's stage (LoaderOptions::stage) for training on `device`: on a GPU it copies
// every batch into page-locked (pinned) memory on the loader thread, so that images_on and
// labels_on only start an asynchronous copy; on the CPU it is empty (no stage).
std::function<void(Batch&)> make_batch_stage(const Dataset& data, torch::Device device);

// A batch's images (N, C, H, W) and labels (N) on `device`. On the CPU they are views of
// the batch's own memory; on a GPU they are copied without blocking from the pinned copies
// of make_batch_stage, or from pinned copies made here for a batch of an unstaged loader.
torch::Tensor images_on(Batch& batch, const Dataset& data, torch::Device device);
torch::Tensor labels_on(Batch& batch, torch::Device device);

}  // namespace mapgate

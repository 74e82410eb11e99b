// Data-parallel training over several processes (docs/scale.md): who this process is
// (torchrun's environment variables) and the collectives the trainer needs, on
// LibTorch's own c10d (a TCPStore for the rendezvous, ProcessGroupGloo for the CPU,
// ProcessGroupNCCL between GPUs where LibTorch has it). The c10d headers stay in
// data_parallel.cpp.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <c10/core/Device.h>

#include "train/choices.h"

namespace at {
class Tensor;
}  // namespace at

namespace mapgate {

// torchrun's convention: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT.
struct WorldSettings {
  int rank = 0, size = 1, local_rank = 0;
  int local_size = 1;  // LOCAL_WORLD_SIZE: the processes on this machine
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
};

// The process's place from the environment (`lookup` is getenv in the program; tests
// pass their own). WORLD_SIZE unset or 1: one process, nothing else is read. Otherwise
// RANK is required; a value that is not a whole number in range (WORLD_SIZE >= 1,
// 0 <= RANK < WORLD_SIZE, 1 <= MASTER_PORT <= 65535; LOCAL_RANK and LOCAL_WORLD_SIZE
// optional, 0 <= LOCAL_RANK < LOCAL_WORLD_SIZE <= WORLD_SIZE) is a UsageError naming the variable.
WorldSettings world_from_environment(const std::function<const char*(const char*)>& lookup);

// Whether this build can run several processes (LibTorch's c10d with Gloo was found).
bool data_parallel_available();
// Whether it can also run NCCL between GPUs (a LibTorch with CUDA and NCCL's header).
bool nccl_available();

// The backend --dist-backend `requested` means for a process training on `device`, with
// `local_processes` processes and `cuda_devices` GPUs on its machine. auto: NCCL when the
// processes train on GPUs of their own (local_processes <= cuda_devices: NCCL refuses two
// ranks on one GPU) and this build has it; Gloo otherwise (it carries CUDA tensors through
// the host). nccl on the CPU is a UsageError; nccl in a build without it an Error.
DistBackend resolve_dist_backend(DistBackend requested, c10::Device device, int local_processes, int cuda_devices);

// One process of a data-parallel group. Every collective is called by every rank in the
// same order; a failed one (another process exited, or none answered within `timeout`)
// throws Error "rank R of W: WHAT failed: ...".
class DataParallel {
 public:
  // Rank 0 serves the rendezvous at MASTER_ADDR:MASTER_PORT; every rank waits up to
  // `timeout` for all of them. `backend` is Gloo or NCCL (resolve_dist_backend); NCCL's
  // collectives run on `device`, a GPU. Tensors of any device may be passed: each
  // collective gathers them into one buffer per element type on the backend's device
  // (the host for Gloo) and copies the result back.
  DataParallel(const WorldSettings& world, std::chrono::milliseconds timeout, DistBackend backend = DistBackend::kGloo,
               c10::Device device = c10::Device(c10::DeviceType::CPU));
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  DistBackend backend() const { return device_.is_cuda() ? DistBackend::kNccl : DistBackend::kGloo; }
  // In place: rank 0's values to every rank.
  void broadcast(const std::vector<at::Tensor>& tensors, const std::string& what);
  // In place: the sum over the ranks.
  void sum(const std::vector<at::Tensor>& tensors, const std::string& what);

 private:
  struct Group;
  std::unique_ptr<Group> group_;
  int rank_ = 0, size_ = 1;
  c10::Device device_;  // where the collectives' buffers live: the host for Gloo, the GPU for NCCL
};

}  // namespace mapgate

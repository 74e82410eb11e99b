// Data-parallel collectives on c10d; see data_parallel.h. Built with Gloo where CMake
// found it (MAPGATE_WITH_GLOO), and with NCCL too where LibTorch has CUDA and NCCL's
// header was found (MAPGATE_WITH_NCCL); without Gloo a request for several processes is
// refused.
#include "train/data_parallel.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>

#include <torch/torch.h>

#include "common/error.h"

#ifdef MAPGATE_WITH_GLOO
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1  // Debian's ProcessGroupGloo.hpp is guarded by it
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#ifdef MAPGATE_WITH_NCCL
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1  // ProcessGroupNCCL.hpp is guarded by it
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace mapgate {
namespace {

// A whole number in [lo, hi] from environment variable `name`.
int env_int(const std::function<const char*(const char*)>& lookup, const char* name, long lo, long hi) {
  const char* text = lookup(name);
  if (text == nullptr || *text == '\0')
    throw UsageError(std::string("environment: ") + name + " is not set (needed when WORLD_SIZE > 1)");
  errno = 0;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (errno != 0 || *end != '\0' || value < lo || value > hi)
    throw UsageError(std::string("environment: ") + name + "=" + quoted(text) + " must be a whole number in [" +
                     std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return static_cast<int>(value);
}

// The first line of a c10d message (they can carry a C++ stack trace).
std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

}  // namespace

WorldSettings world_from_environment(const std::function<const char*(const char*)>& lookup) {
  auto given = [&](const char* name) {
    const char* text = lookup(name);
    return text != nullptr && *text != '\0';
  };
  WorldSettings w;
  if (!given("WORLD_SIZE")) return w;
  w.size = env_int(lookup, "WORLD_SIZE", 1, 4096);
  if (w.size == 1) return w;
  w.rank = env_int(lookup, "RANK", 0, w.size - 1);
  if (given("LOCAL_WORLD_SIZE")) w.local_size = env_int(lookup, "LOCAL_WORLD_SIZE", 1, w.size);
  const int local_ranks = given("LOCAL_WORLD_SIZE") ? w.local_size : w.size;
  if (given("LOCAL_RANK")) w.local_rank = env_int(lookup, "LOCAL_RANK", 0, local_ranks - 1);
  if (given("MASTER_ADDR")) w.master_addr = lookup("MASTER_ADDR");
  w.master_port = env_int(lookup, "MASTER_PORT", 1, 65535);
  return w;
}

bool nccl_available() {
#ifdef MAPGATE_WITH_NCCL
  return true;
#else
  return false;
#endif
}

DistBackend resolve_dist_backend(DistBackend requested, c10::Device device, int local_processes, int cuda_devices) {
  if (requested == DistBackend::kNccl) {
    if (!device.is_cuda()) throw UsageError("--dist-backend nccl: NCCL connects GPUs; with --device cpu use gloo");
    if (!nccl_available())
      throw Error("--dist-backend nccl: this mapgate was built without NCCL (it needs a LibTorch with CUDA "
                  "and NCCL's header; docs/build.md); use gloo");
    return requested;
  }
  if (requested == DistBackend::kGloo) return requested;
  const bool own_gpus = device.is_cuda() && local_processes <= cuda_devices;
  return own_gpus && nccl_available() ? DistBackend::kNccl : DistBackend::kGloo;
}

#ifdef MAPGATE_WITH_GLOO

bool data_parallel_available() { return true; }

// One process group, Gloo's or NCCL's: `with` hands it to a generic lambda (the two share
// the collectives' signatures but no base class across LibTorch versions).
struct DataParallel::Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#ifdef MAPGATE_WITH_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif
  template <class F>
  auto with(F f) {
#ifdef MAPGATE_WITH_NCCL
    if (nccl) return f(*nccl);
#endif
    return f(*gloo);
  }
};

namespace {

c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo_group(const c10::intrusive_ptr<c10d::Store>& store,
                                                      const WorldSettings& world, std::chrono::milliseconds timeout) {
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(world.master_addr));
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, world.rank, world.size, options);
}

}  // namespace

DataParallel::DataParallel(const WorldSettings& world, std::chrono::milliseconds timeout, DistBackend backend,
                           c10::Device device)
    : group_(std::make_unique<Group>()),
      rank_(world.rank),
      size_(world.size),
      device_(backend == DistBackend::kNccl ? device : c10::Device(c10::DeviceType::CPU)) {
  const std::string where = "rank " + std::to_string(rank_) + " of " + std::to_string(size_);
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<std::uint16_t>(world.master_port);
    options.isServer = rank_ == 0;
    options.numWorkers = static_cast<std::size_t>(size_);
    options.timeout = timeout;
    group_->store = c10::make_intrusive<c10d::TCPStore>(world.master_addr, options);
    if (backend != DistBackend::kNccl) {
      group_->gloo = gloo_group(group_->store, world, timeout);
    } else {
#ifdef MAPGATE_WITH_NCCL
      auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
      nccl_options->timeout = timeout;
      group_->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(group_->store, rank_, size_, nccl_options);
#else
      throw Error("built without NCCL");  // resolve_dist_backend refuses it first
#endif
    }
  } catch (const std::exception& e) {
    throw Error(where + ": joining the group at " + world.master_addr + ":" + std::to_string(world.master_port) +
                " failed (check MASTER_ADDR, MASTER_PORT and that all " + std::to_string(size_) +
                " processes started): " + first_line(e.what()));
  }
}

DataParallel::~DataParallel() = default;

namespace {
template <class Start>
void run_collective(int rank, int size, const std::string& what, Start start) {
  try {
    start()->wait();
  } catch (const std::exception& e) {
    throw Error("rank " + std::to_string(rank) + " of " + std::to_string(size) + ": " + what +
                " failed (another process exited or stopped answering; its own output says why): " +
                first_line(e.what()));
  }
}

// Runs `op` on one flat buffer on `device` per element type of `tensors` and copies the
// result back: one message per type instead of one per tensor.
template <class Op>
void on_flat_buffers(const std::vector<at::Tensor>& tensors, c10::Device device, Op op) {
  std::vector<c10::ScalarType> types;
  for (const at::Tensor& t : tensors)
    if (std::find(types.begin(), types.end(), t.scalar_type()) == types.end()) types.push_back(t.scalar_type());
  for (const c10::ScalarType type : types) {
    std::vector<at::Tensor> parts, flat;
    for (const at::Tensor& t : tensors)
      if (t.scalar_type() == type) {
        parts.push_back(t);
        flat.push_back(t.reshape({-1}).to(device));
      }
    std::vector<at::Tensor> buffer{torch::cat(flat)};
    op(buffer);
    std::int64_t offset = 0;
    for (const at::Tensor& t : parts) {
      t.copy_(buffer[0].narrow(0, offset, t.numel()).view_as(t));
      offset += t.numel();
    }
  }
}
}  // namespace

void DataParallel::broadcast(const std::vector<at::Tensor>& tensors, const std::string& what) {
  on_flat_buffers(tensors, device_, [&](std::vector<at::Tensor>& buffer) {
    run_collective(rank_, size_, what, [&] { return group_->with([&](auto& g) { return g.broadcast(buffer); }); });
  });
}

void DataParallel::sum(const std::vector<at::Tensor>& tensors, const std::string& what) {
  on_flat_buffers(tensors, device_, [&](std::vector<at::Tensor>& buffer) {
    run_collective(rank_, size_, what, [&] { return group_->with([&](auto& g) { return g.allreduce(buffer); }); });
  });
}

#else  // no Gloo in this build

bool data_parallel_available() { return false; }
struct DataParallel::Group {};

DataParallel::DataParallel(const WorldSettings& world, std::chrono::milliseconds, DistBackend, c10::Device)
    : rank_(world.rank), size_(world.size), device_(c10::DeviceType::CPU) {
  throw UsageError("WORLD_SIZE=" + std::to_string(size_) +
                   ": this mapgate was built without c10d's Gloo backend (libgloo-dev), so it runs "
                   "one process only (docs/scale.md)");
}
DataParallel::~DataParallel() = default;
void DataParallel::broadcast(const std::vector<at::Tensor>&, const std::string&) {}
void DataParallel::sum(const std::vector<at::Tensor>&, const std::string&) {}

#endif

}  // namespace mapgate

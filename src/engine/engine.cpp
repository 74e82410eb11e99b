// Engine: folded weights, per-thread workspaces and batches of examples on a worker pool;
// one example's pass is forward_pass.cpp.
#include "engine/engine.h"
#include "engine/engine_model.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <mutex>
#include <thread>

#include "common/error.h"

namespace mapgate {

using folded::Bn;
using folded::Layer;
using folded::Transition;

// Threads kept for the engine's lifetime, so that a batch does not pay for starting them
// (tens of microseconds each). run(n, fn) calls fn(0) on the caller and fn(1..n-1) on pool
// threads, and returns when all have finished; fn must not throw.
class Engine::WorkerPool {
 public:
  ~WorkerPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    start_.notify_all();
    for (auto& t : threads_) t.join();
  }

  void run(int n, const std::function<void(int)>& fn) {
    std::unique_lock<std::mutex> lock(mu_);
    while (static_cast<int>(threads_.size()) < n - 1) {
      const int t = static_cast<int>(threads_.size()) + 1;
      threads_.emplace_back([this, t, seen = generation_] { loop(t, seen); });
    }
    job_ = &fn;
    job_threads_ = n;
    pending_ = n - 1;
    ++generation_;
    lock.unlock();
    start_.notify_all();
    fn(0);
    lock.lock();
    done_.wait(lock, [this] { return pending_ == 0; });
    job_ = nullptr;
  }

 private:
  void loop(int t, std::uint64_t seen) {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      start_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      if (t >= job_threads_) continue;  // this job needs fewer threads
      const std::function<void(int)>* job = job_;
      lock.unlock();
      (*job)(t);
      lock.lock();
      if (--pending_ == 0) done_.notify_one();
    }
  }

  std::mutex mu_;
  std::condition_variable start_, done_;
  std::vector<std::thread> threads_;      // thread i runs fn(i + 1)
  const std::function<void(int)>* job_ = nullptr;
  int job_threads_ = 0;                   // caller included
  int pending_ = 0;                       // pool threads still running the current job
  std::uint64_t generation_ = 0;          // one per job
  bool stop_ = false;
};

namespace {

Bn fold_bn(const Weights& w, const std::string& name) {
  const auto& g = w.tensors.at(name + ".weight").data;
  const auto& b = w.tensors.at(name + ".bias").data;
  const auto& m = w.tensors.at(name + ".running_mean").data;
  const auto& v = w.tensors.at(name + ".running_var").data;
  Bn bn;
  bn.scale.resize(g.size());
  bn.shift.resize(g.size());
  for (std::size_t c = 0; c < g.size(); ++c) {
    const double s = g[c] / std::sqrt(static_cast<double>(v[c]) + w.bn_eps);
    bn.scale[c] = static_cast<float>(s);
    bn.shift[c] = static_cast<float>(b[c] - m[c] * s);
  }
  return bn;
}

}  // namespace

Engine::Engine(const Weights& weights, EngineOptions options)
    : config_(weights.config), mean_(weights.mean), std_(weights.std), model_(std::make_unique<Model>()) {
  check_weights(weights, "in memory");
  set_options(options);
  auto& m = *model_;
  const auto& t = weights.tensors;
  const int k = config_.growth;
  m.stem = t.at("stem.weight").data;
  m.stem_out = config_.stem_channels();
  int ch = m.stem_out, size = config_.image_size, l = 0;
  for (int b = 0; b < 3; ++b) {
    m.size[b] = size;
    m.start[b] = ch;
    for (int i = 0; i < config_.layers_per_block(); ++i, ++l) {
      const std::string name = "block" + std::to_string(b + 1) + "." + std::to_string(i);
      Layer layer;
      layer.in = ch;
      if (config_.bc) {
        layer.norm1 = fold_bn(weights, name + ".norm1");
        layer.conv1 = t.at(name + ".conv1.weight").data;
        layer.norm2 = fold_bn(weights, name + ".norm2");
        layer.conv2 = t.at(name + ".conv2.weight").data;
      } else {
        layer.norm1 = fold_bn(weights, name + ".norm");
        layer.conv1 = t.at(name + ".conv.weight").data;
      }
      if (config_.gated) {
        layer.gate_w = t.at("gates." + std::to_string(l) + ".fc.weight").data;
        layer.gate_b = t.at("gates." + std::to_string(l) + ".fc.bias").data;
      }
      m.blocks[b].push_back(std::move(layer));
      ch += k;
    }
    m.total[b] = ch;
    if (b < 2) {
      const std::string name = "trans" + std::to_string(b + 1);
      auto& tr = m.trans[b];
      tr.in = ch;
      tr.out = config_.transition_out(ch);
      tr.norm = fold_bn(weights, name + ".norm");
      tr.conv = t.at(name + ".conv.weight").data;
      ch = tr.out;
      size /= 2;  // avg_pool2d(2), floor mode
    }
  }
  m.norm = fold_bn(weights, "norm");
  m.classifier_w = t.at("classifier.weight").data;
  m.classifier_b = t.at("classifier.bias").data;
}

Engine Engine::load(const std::string& path, EngineOptions options) { return Engine(read_weights(path), options); }

Engine::~Engine() = default;
Engine::Engine(Engine&&) noexcept = default;
Engine& Engine::operator=(Engine&&) noexcept = default;

void Engine::set_options(const EngineOptions& options) {
  if (options.mode == EngineMode::kGated && !config_.gated) {
    options_ = options;
    options_.mode = EngineMode::kDense;
  } else {
    options_ = options;
  }
  if (!(options_.threshold < 0 || is_valid_threshold(options_.threshold)))  // NaN fails too
    throw Error("engine threshold " + std::to_string(options_.threshold) +
                ": expected 0 <= tau <= 1 (or negative: the weight file's own)");
}

std::unique_ptr<Engine::Workspace> make_workspace(const Engine::Model& m, const DenseNetConfig& c) {
  auto ws = std::make_unique<Engine::Workspace>();
  const int k4 = c.bc ? 4 * c.growth : 0;
  std::size_t flat = 0, trans_pooled = 0;
  int max_channels = 0;
  for (int b = 0; b < 3; ++b) {
    const std::size_t s = m.size[b], plane = s * s, padded = (s + 2) * (s + 2);
    ws->feat[b].assign(m.total[b] * plane, 0.f);
    int planes = std::max(m.total[b], k4);
    if (b == 0) planes = std::max(planes, c.in_channels);
    ws->padded[b].assign(planes * padded, 0.f);
    flat = std::max(flat, m.total[b] * plane);
    if (b < 2) {
      const std::size_t next = m.size[b + 1];  // the pooled size the transition's conv runs at
      trans_pooled = std::max(trans_pooled, m.trans[b].in * next * next);
    }
    max_channels = std::max(max_channels, m.total[b]);
  }
  ws->flat.assign(flat, 0.f);
  ws->trans_pooled.assign(trans_pooled, 0.f);
  ws->bottleneck.assign(static_cast<std::size_t>(k4) * m.size[0] * m.size[0], 0.f);
  ws->gap.assign(max_channels, 0.f);
  ws->pooled.assign(max_channels, 0.f);
  ws->z.assign(c.growth, 0.f);
  ws->p.assign(c.growth, 0.f);
  ws->all.resize(std::max(max_channels, std::max(k4, c.in_channels)));
  for (std::size_t i = 0; i < ws->all.size(); ++i) ws->all[i] = static_cast<int>(i);
  ws->active.reserve(max_channels);
  ws->out_active.reserve(c.growth);
  return ws;
}

void Engine::run(Workspace& ws, const float* image, float* logits, EngineStats* stats,
                 const std::uint8_t* given) const {
  prepare_pass(*model_, config_, options_, ws, stats, given);
  forward_pass(*model_, config_, options_, ws, image, logits, stats, given);
}

void Engine::forward(const float* image, float* logits, EngineStats* stats, const std::uint8_t* masks) {
  if (workspaces_.empty()) workspaces_.push_back(make_workspace(*model_, config_));
  run(*workspaces_[0], image, logits, stats, masks);
}

namespace {

// Example i's pieces of forward_batch's arrays (stats and masks may be null).
struct ExampleSlice {
  const float* image;
  float* logits;
  EngineStats* stats;
  const std::uint8_t* masks;
};

ExampleSlice example_slice(const DenseNetConfig& c, int i, const float* images, float* logits, EngineStats* stats,
                           const std::uint8_t* masks) {
  const std::size_t image_size = static_cast<std::size_t>(c.in_channels) * c.image_size * c.image_size;
  const std::size_t mask_size = static_cast<std::size_t>(c.dense_layers()) * c.growth;
  return {images + i * image_size, logits + static_cast<std::size_t>(i) * c.num_classes, stats ? stats + i : nullptr,
          masks ? masks + i * mask_size : nullptr};
}

}  // namespace

void Engine::forward_batch(const float* images, int n, float* logits, EngineStats* stats, int threads,
                           const std::uint8_t* masks) {
  if (n <= 0) return;
  if (threads > 1 && n < threads) return forward_shared(images, n, logits, stats, threads, masks);
  const int workers = std::max(1, std::min(threads, n));
  while (static_cast<int>(workspaces_.size()) < workers) workspaces_.push_back(make_workspace(*model_, config_));
  auto example = [&](Workspace& ws, int i) {
    const ExampleSlice e = example_slice(config_, i, images, logits, stats, masks);
    run(ws, e.image, e.logits, e.stats, e.masks);
  };
  if (workers == 1) {
    for (int i = 0; i < n; ++i) example(*workspaces_[0], i);
    return;
  }
  // Example-parallel: each thread takes the next example and runs it whole.
  std::atomic<int> next{0};
  std::exception_ptr error;
  std::atomic<bool> failed{false};
  auto work = [&](int t) {
    try {
      for (int i; !failed && (i = next.fetch_add(1)) < n;) example(*workspaces_[t], i);
    } catch (...) {
      if (!failed.exchange(true)) error = std::current_exception();
    }
  };
  if (!pool_) pool_ = std::make_unique<WorkerPool>();
  pool_->run(workers, work);
  if (error) std::rethrow_exception(error);
}

// Fewer examples than threads (batch 1): all threads share each example's pass, each
// computing its share of every step's maps (team.h), one example after the other.
void Engine::forward_shared(const float* images, int n, float* logits, EngineStats* stats, int threads,
                            const std::uint8_t* masks) {
  if (workspaces_.empty()) workspaces_.push_back(make_workspace(*model_, config_));
  if (!pool_) pool_ = std::make_unique<WorkerPool>();
  Workspace& ws = *workspaces_[0];
  SpinBarrier barrier(threads);
  for (int i = 0; i < n; ++i) {
    const ExampleSlice e = example_slice(config_, i, images, logits, stats, masks);
    prepare_pass(*model_, config_, options_, ws, e.stats, e.masks);  // throws here, before the team starts
    pool_->run(threads, [&](int t) {
      forward_pass(*model_, config_, options_, ws, e.image, e.logits, e.stats, e.masks, Team{t, threads, &barrier});
    });
  }
}

}  // namespace mapgate

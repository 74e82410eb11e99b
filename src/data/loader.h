// Mini-batch loader: seeded shuffling, standard CIFAR augmentation (4-pixel zero pad +
// random 32x32 crop, horizontal flip), per-channel normalisation, and batches prepared
// on a background thread so the training step does not wait for data.
// Order and augmentation depend only on (seed, epoch): a resumed run sees the same data.
#pragma once

#include <any>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "data/dataset.h"

namespace mapgate {

// Per-channel mean and std of pixel/255 over a dataset (computed on the training split).
struct Normalization {
  std::vector<float> mean;
  std::vector<float> std;
};
Normalization compute_normalization(const Dataset& data);

struct Batch {
  int size = 0;                  // examples in this batch (the last one may be short)
  std::vector<float> images;     // size x C x H x W, normalised
  std::vector<std::int64_t> labels;
  std::vector<std::int64_t> indices;  // dataset index of each example
  // What LoaderOptions::stage made of this batch on the loader thread (the loader does not
  // look inside; src/train/device.cpp keeps page-locked copies here for a GPU). Empty
  // without a stage.
  std::any staged;
};

struct LoaderOptions {
  int batch_size = 64;
  bool shuffle = true;
  bool augment = true;           // pad-4 random crop + horizontal flip
  std::uint64_t seed = 0;
  int prefetch = 4;              // batches prepared ahead
  // Data-parallel training: this loader yields shard `shard` of `shards` (see plan_epoch).
  int shard = 0;
  int shards = 1;
  // Runs on the loader thread on every prepared batch, before next() can hand it out
  // (e.g. copies it into page-locked memory for a GPU: make_batch_stage, train/device.h).
  // An exception it throws stops the epoch like any error of preparing it.
  std::function<void(Batch&)> stage;
};

// Writes one normalised (optionally augmented) image into `out` (C x H x W floats):
//   out(c, y, x) = (s(c, y + crop_dy, x' + crop_dx) / 255 - mean[c]) / std[c],
//   x' = flip ? W-1-x : x,  s = the source image, 0 outside it (zero padding in raw
// pixel space, as torchvision's RandomCrop(32, padding=4) followed by Normalize).
// The loader draws crop_dy, crop_dx in [-4, 4]; any offset is accepted.
// A channel with std <= 0 is divided by 1 instead. This is the reference the loader
// and the tests share.
void prepare_image(const Dataset& data, std::size_t index, const Normalization& norm,
                   int crop_dy, int crop_dx, bool flip, float* out);

// Augmentation of one example: arguments of prepare_image.
struct Augmentation {
  int dy = 0, dx = 0;
  bool flip = false;
};

// Everything the loader decides for one epoch; depends only on (n, options, epoch).
// One std::mt19937_64, seeded with splitmix64 of (seed, epoch), first shuffles (portable
// Fisher-Yates, if options.shuffle), then draws dy, dx in [-4, 4] and flip (p = 0.5) for
// each position in order (if options.augment; otherwise all zero).
// With options.shards = W > 1 (data-parallel training, like PyTorch's DistributedSampler
// with drop_last), the plan keeps positions shard, shard + W, shard + 2W, ... of the first
// floor(n / W) * W positions of that one-process plan: the shards of an epoch are
// disjoint, equally long, and each example keeps the augmentation it has in one process.
struct EpochPlan {
  std::vector<std::int64_t> order;    // dataset index of the i-th example of the epoch
  std::vector<Augmentation> augment;  // augmentation of the i-th example
};
EpochPlan plan_epoch(std::size_t n, const LoaderOptions& options, int epoch);

class Loader {
 public:
  Loader(const Dataset& data, Normalization norm, LoaderOptions options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Starts producing epoch `epoch` on the background thread (stops any previous one).
  void start_epoch(int epoch);
  // Next batch of the current epoch; false once the epoch is exhausted (or before the
  // first start_epoch). Rethrows an exception raised while preparing the epoch.
  // Batch k holds positions [k*batch_size, ...) of plan_epoch(data.size(), options, epoch).
  bool next(Batch& out);
  // Seconds next() spent blocked since start_epoch().
  double wait_seconds() const { return wait_seconds_; }
  std::size_t batches_per_epoch() const;
  const Dataset& data() const { return data_; }

 private:
  void produce(int epoch);
  void stop();

  const Dataset& data_;  // must outlive the loader and stay unchanged while it runs
  Normalization norm_;
  LoaderOptions options_;
  std::vector<float> lut_;  // C x 256: normalised value of each raw pixel value
  std::thread worker_;
  // Guards everything below; changed_ signals any change to it (both directions).
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Batch> ready_;   // prepared batches, at most options_.prefetch
  std::vector<Batch> spare_;  // returned buffers, reused by the producer
  std::exception_ptr error_;  // set by the producer, rethrown by next()
  bool done_ = true, stopping_ = false;
  double wait_seconds_ = 0;  // touched only by the consumer thread
};

}  // namespace mapgate

// Mini-batch loader: per-channel normalisation, pad-4 crop + flip augmentation, seeded
// order, and a background producer thread feeding a bounded queue.
// Must match torchvision's RandomCrop(32, padding=4) + RandomHorizontalFlip + Normalize:
//   out(c, y, x) = (s(c, y + dy, x' + dx) / 255 - mean[c]) / std[c],  x' = flip ? W-1-x : x,
// where s is the source image and s = 0 (raw pixel value) outside it. (dy, dx) is the
// offset of the HxW window from the centre of the zero-padded (H+8)x(W+8) image, i.e. the
// window's top-left corner in padded coordinates is (4 + dy, 4 + dx); the flip is applied
// to the cropped window. Example: dy = +1, dx = -2 moves content up 1 row and right 2
// columns; the last row and first two columns become the normalised zero.
#include "data/loader.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <utility>

#include "common/error.h"
#include "common/pixel_lut.h"

namespace mapgate {

namespace {

std::uint64_t splitmix64(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Seed of the per-epoch generator: distinct, well mixed streams for every (seed, epoch).
std::uint64_t epoch_seed(std::uint64_t seed, int epoch) {
  return splitmix64(splitmix64(seed) ^ splitmix64(0x6d61706761746545ULL +
                                                  static_cast<std::uint64_t>(epoch)));
}

// Uniform integer in [0, n), n >= 1, by rejection. Unlike std::uniform_int_distribution
// (whose algorithm differs between standard libraries) this gives the same stream
// everywhere, so a run resumed on another machine sees the same data.
std::uint64_t uniform_below(std::mt19937_64& gen, std::uint64_t n) {
  const std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
  const std::uint64_t limit = max - (max % n + 1) % n;  // accept r <= limit
  std::uint64_t r;
  do {
    r = gen();
  } while (r > limit);
  return r % n;
}

// lut(c, v) = (v / 255 - mean[c]) / std[c]; C x 256 floats.
std::vector<float> make_lut(const Dataset& data, const Normalization& norm) {
  const std::size_t channels = static_cast<std::size_t>(data.channels);
  if (norm.mean.size() != channels || norm.std.size() != channels) {
    throw Error("normalization has " + std::to_string(norm.mean.size()) + " means and " +
                std::to_string(norm.std.size()) + " stds; dataset " + quoted(data.name) +
                " has " + std::to_string(channels) + " channels");
  }
  return pixel_lut(norm.mean, norm.std);
}

void check_consistent(const Dataset& data) {
  if (data.channels <= 0 || data.height <= 0 || data.width <= 0) {
    if (data.size() == 0) return;
    throw Error("dataset " + quoted(data.name) + ": shape " + std::to_string(data.channels) +
                "x" + std::to_string(data.height) + "x" + std::to_string(data.width) +
                " has a non-positive dimension");
  }
  if (data.images.size() != data.size() * data.image_bytes()) {
    throw Error("dataset " + quoted(data.name) + ": " + std::to_string(data.images.size()) +
                " image bytes for " + std::to_string(data.size()) + " labels of " +
                std::to_string(data.image_bytes()) + " bytes each");
  }
}

// prepare_image with the lookup table already built. src: C x H x W bytes; out likewise
// in floats. Per row, the valid source columns are computed once, so the inner loops
// carry no bounds test.
void prepare_image_lut(const std::uint8_t* src, int channels, int height, int width,
                       const float* lut, int dy, int dx, bool flip, float* out) {
  // Output columns [x0, x1) read source column x + dx (no flip) or W-1-x + dx (flip).
  const int x0 = std::clamp(flip ? dx : -dx, 0, width);
  const int x1 = std::clamp(flip ? width + dx : width - dx, x0, width);
  for (int c = 0; c < channels; ++c) {
    const float* l = lut + static_cast<std::size_t>(c) * 256;
    const float pad = l[0];
    const std::uint8_t* plane = src + static_cast<std::size_t>(c) * height * width;
    for (int y = 0; y < height; ++y, out += width) {
      const int sy = y + dy;
      if (sy < 0 || sy >= height || x0 == x1) {
        std::fill(out, out + width, pad);
        continue;
      }
      const std::uint8_t* row = plane + static_cast<std::size_t>(sy) * width;
      std::fill(out, out + x0, pad);
      if (flip) {
        const int base = width - 1 + dx;  // source column of output column 0
        for (int x = x0; x < x1; ++x) out[x] = l[row[base - x]];
      } else {
        for (int x = x0; x < x1; ++x) out[x] = l[row[x + dx]];
      }
      std::fill(out + x1, out + width, pad);
    }
  }
}

}  // namespace

Normalization compute_normalization(const Dataset& data) {
  check_consistent(data);
  if (data.size() == 0) {
    throw Error("dataset " + quoted(data.name) + ": cannot compute normalisation of 0 images");
  }
  const std::size_t channels = static_cast<std::size_t>(data.channels);
  const std::size_t plane = static_cast<std::size_t>(data.height) * data.width;
  // Exact integer sums of v and v^2 (at most 2^64 / 255^2 ~ 2.8e14 pixels per channel),
  // then mean and population variance in double.
  std::vector<std::uint64_t> sum(channels, 0), sum_sq(channels, 0);
  for (std::size_t i = 0; i < data.size(); ++i) {
    const std::uint8_t* img = data.image(i);
    for (std::size_t c = 0; c < channels; ++c) {
      const std::uint8_t* p = img + c * plane;
      std::uint64_t s = 0, s2 = 0;
      for (std::size_t k = 0; k < plane; ++k) {
        const std::uint32_t v = p[k];
        s += v;
        s2 += v * v;
      }
      sum[c] += s;
      sum_sq[c] += s2;
    }
  }
  const double count = static_cast<double>(data.size()) * static_cast<double>(plane);
  Normalization norm;
  norm.mean.resize(channels);
  norm.std.resize(channels);
  for (std::size_t c = 0; c < channels; ++c) {
    const double mean = static_cast<double>(sum[c]) / count;                  // raw units
    const double var = std::max(0.0, static_cast<double>(sum_sq[c]) / count - mean * mean);
    norm.mean[c] = static_cast<float>(mean / 255.0);
    norm.std[c] = static_cast<float>(std::sqrt(var) / 255.0);
  }
  return norm;
}

void prepare_image(const Dataset& data, std::size_t index, const Normalization& norm,
                   int crop_dy, int crop_dx, bool flip, float* out) {
  if (index >= data.size()) {
    throw Error("dataset " + quoted(data.name) + ": index " + std::to_string(index) +
                " out of range (" + std::to_string(data.size()) + " images)");
  }
  const std::vector<float> lut = make_lut(data, norm);
  prepare_image_lut(data.image(index), data.channels, data.height, data.width, lut.data(),
                    crop_dy, crop_dx, flip, out);
}

namespace {
// Positions shard, shard + shards, ... of the first floor(n / shards) * shards.
EpochPlan shard_of(const EpochPlan& full, int shard, int shards) {
  const std::size_t w = static_cast<std::size_t>(shards);
  const std::size_t per_shard = full.order.size() / w;
  EpochPlan part;
  part.order.reserve(per_shard);
  part.augment.reserve(per_shard);
  for (std::size_t i = 0; i < per_shard; ++i) {
    const std::size_t p = i * w + static_cast<std::size_t>(shard);
    part.order.push_back(full.order[p]);
    part.augment.push_back(full.augment[p]);
  }
  return part;
}
}  // namespace

EpochPlan plan_epoch(std::size_t n, const LoaderOptions& options, int epoch) {
  EpochPlan plan;
  plan.order.resize(n);
  for (std::size_t i = 0; i < n; ++i) plan.order[i] = static_cast<std::int64_t>(i);
  plan.augment.assign(n, Augmentation{});
  std::mt19937_64 gen(epoch_seed(options.seed, epoch));
  if (options.shuffle) {
    for (std::size_t i = n; i > 1; --i) {  // Fisher-Yates, back to front
      std::swap(plan.order[i - 1], plan.order[uniform_below(gen, i)]);
    }
  }
  if (options.augment) {
    for (Augmentation& a : plan.augment) {
      a.dy = static_cast<int>(uniform_below(gen, 9)) - 4;
      a.dx = static_cast<int>(uniform_below(gen, 9)) - 4;
      a.flip = uniform_below(gen, 2) == 1;
    }
  }
  return options.shards > 1 ? shard_of(plan, options.shard, options.shards) : plan;
}

Loader::Loader(const Dataset& data, Normalization norm, LoaderOptions options)
    : data_(data), norm_(std::move(norm)), options_(options) {
  if (options_.batch_size < 1) {
    throw Error("loader: batch size " + std::to_string(options_.batch_size) +
                " must be at least 1");
  }
  if (options_.shards < 1 || options_.shard < 0 || options_.shard >= options_.shards) {
    throw Error("loader: shard " + std::to_string(options_.shard) + " of " + std::to_string(options_.shards) +
                " must satisfy 0 <= shard < shards");
  }
  if (data_.size() > 0 && data_.size() < static_cast<std::size_t>(options_.shards)) {
    throw Error("dataset " + quoted(data_.name) + ": " + std::to_string(data_.size()) + " images cannot be split into " +
                std::to_string(options_.shards) + " non-empty shards");
  }
  if (options_.prefetch < 1) {
    throw Error("loader: prefetch " + std::to_string(options_.prefetch) +
                " must be at least 1");
  }
  check_consistent(data_);
  lut_ = make_lut(data_, norm_);
}

Loader::~Loader() { stop(); }

std::size_t Loader::batches_per_epoch() const {
  const std::size_t b = static_cast<std::size_t>(options_.batch_size);
  const std::size_t n = data_.size() / static_cast<std::size_t>(options_.shards);
  return (n + b - 1) / b;
}

void Loader::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (worker_.joinable()) worker_.join();
  std::lock_guard<std::mutex> lock(mutex_);
  while (!ready_.empty()) {
    spare_.push_back(std::move(ready_.front()));
    ready_.pop_front();
  }
  done_ = true;
  error_ = nullptr;
}

void Loader::start_epoch(int epoch) {
  stop();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = false;
    done_ = false;
  }
  wait_seconds_ = 0;
  try {
    worker_ = std::thread(&Loader::produce, this, epoch);
  } catch (...) {  // no producer: next() must not wait for one
    std::lock_guard<std::mutex> lock(mutex_);
    done_ = true;
    throw;
  }
}

void Loader::produce(int epoch) {
  try {
    check_consistent(data_);  // the dataset is held by reference: it may have changed
    const EpochPlan plan = plan_epoch(data_.size(), options_, epoch);
    const std::size_t n = plan.order.size();
    const std::size_t bs = static_cast<std::size_t>(options_.batch_size);
    const std::size_t image_floats = data_.image_bytes();
    for (std::size_t begin = 0; begin < n; begin += bs) {
      Batch batch;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] {
          return stopping_ || ready_.size() < static_cast<std::size_t>(options_.prefetch);
        });
        if (stopping_) return;
        if (!spare_.empty()) {
          batch = std::move(spare_.back());
          spare_.pop_back();
        }
      }
      batch.staged.reset();
      const std::size_t size = std::min(bs, n - begin);
      batch.size = static_cast<int>(size);
      batch.images.resize(size * image_floats);
      batch.labels.resize(size);
      batch.indices.resize(size);
      for (std::size_t j = 0; j < size; ++j) {
        const std::int64_t index = plan.order[begin + j];
        const Augmentation& a = plan.augment[begin + j];
        batch.indices[j] = index;
        batch.labels[j] = data_.labels[static_cast<std::size_t>(index)];
        prepare_image_lut(data_.image(static_cast<std::size_t>(index)), data_.channels,
                          data_.height, data_.width, lut_.data(), a.dy, a.dx, a.flip,
                          batch.images.data() + j * image_floats);
      }
      if (options_.stage) options_.stage(batch);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (stopping_) return;
        ready_.push_back(std::move(batch));
      }
      changed_.notify_all();
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = std::current_exception();
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    done_ = true;
  }
  changed_.notify_all();
}

bool Loader::next(Batch& out) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (ready_.empty() && !done_) {
    const auto t0 = std::chrono::steady_clock::now();
    changed_.wait(lock, [&] { return !ready_.empty() || done_; });
    wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  if (ready_.empty()) {
    if (error_) std::rethrow_exception(error_);  // again on every call until start_epoch
    return false;
  }
  // Hand over the front batch and keep the caller's old buffers for reuse.
  std::swap(out, ready_.front());
  if (spare_.size() <= static_cast<std::size_t>(options_.prefetch)) {
    spare_.push_back(std::move(ready_.front()));
  }
  ready_.pop_front();
  lock.unlock();
  changed_.notify_all();
  return true;
}

}  // namespace mapgate

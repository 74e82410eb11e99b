// Tests for compute_normalization, prepare_image and Loader (src/data/loader.h).
// prepare_image is checked against a naive per-pixel formula written here; the loader is
// checked against prepare_image and plan_epoch. Datasets are built in memory.
#include "data/loader.h"

#include <gtest/gtest.h>

#include <any>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "common/error.h"

namespace mapgate {
namespace {

// n images of c x h x w with pseudo-random pixels (fixed seed), label i % 10.
Dataset make_dataset(std::size_t n, int c, int h, int w, std::uint32_t seed = 1) {
  Dataset d;
  d.name = "synthetic";
  d.channels = c;
  d.height = h;
  d.width = w;
  d.num_classes = 10;
  for (int k = 0; k < 10; ++k) d.class_names.push_back(std::to_string(k));
  d.images.resize(n * d.image_bytes());
  std::uint32_t s = seed;
  for (std::uint8_t& p : d.images) {
    s = s * 1664525u + 1013904223u;
    p = static_cast<std::uint8_t>(s >> 24);
  }
  for (std::size_t i = 0; i < n; ++i) d.labels.push_back(static_cast<std::uint8_t>(i % 10));
  return d;
}

Normalization some_norm(int channels) {
  Normalization norm;
  for (int c = 0; c < channels; ++c) {
    norm.mean.push_back(0.4f + 0.05f * c);
    norm.std.push_back(0.2f + 0.03f * c);
  }
  return norm;
}

float normalised(const Normalization& norm, int c, int v) {
  return (static_cast<float>(v) / 255.0f - norm.mean[c]) / norm.std[c];
}

// Raw source pixel, 0 outside the image.
int raw(const Dataset& d, std::size_t i, int c, int y, int x) {
  if (y < 0 || y >= d.height || x < 0 || x >= d.width) return 0;
  return d.image(i)[(static_cast<std::size_t>(c) * d.height + y) * d.width + x];
}

// The definition in loader.h, one pixel at a time.
std::vector<float> naive_prepare(const Dataset& d, std::size_t i, const Normalization& norm,
                                 int dy, int dx, bool flip) {
  std::vector<float> out;
  for (int c = 0; c < d.channels; ++c)
    for (int y = 0; y < d.height; ++y)
      for (int x = 0; x < d.width; ++x) {
        const int xs = flip ? d.width - 1 - x : x;
        out.push_back(normalised(norm, c, raw(d, i, c, y + dy, xs + dx)));
      }
  return out;
}

std::vector<float> prepared(const Dataset& d, std::size_t i, const Normalization& norm, int dy,
                            int dx, bool flip) {
  std::vector<float> out(d.image_bytes(), std::numeric_limits<float>::quiet_NaN());
  prepare_image(d, i, norm, dy, dx, flip, out.data());
  return out;
}

bool same_bits(const std::vector<float>& a, const float* b) {
  return std::memcmp(a.data(), b, a.size() * sizeof(float)) == 0;
}

std::vector<Batch> whole_epoch(Loader& loader, int epoch) {
  loader.start_epoch(epoch);
  std::vector<Batch> batches;
  Batch b;  // reused, as a training loop would
  while (loader.next(b)) batches.push_back(b);
  return batches;
}

void expect_identical(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t k = 0; k < a.size(); ++k) {
    EXPECT_EQ(a[k].size, b[k].size) << "batch " << k;
    EXPECT_EQ(a[k].indices, b[k].indices) << "batch " << k;
    EXPECT_EQ(a[k].labels, b[k].labels) << "batch " << k;
    ASSERT_EQ(a[k].images.size(), b[k].images.size()) << "batch " << k;
    EXPECT_TRUE(same_bits(a[k].images, b[k].images.data())) << "batch " << k;
  }
}

std::vector<std::int64_t> epoch_order(const std::vector<Batch>& batches) {
  std::vector<std::int64_t> order;
  for (const Batch& b : batches) order.insert(order.end(), b.indices.begin(), b.indices.end());
  return order;
}

// ---------------------------------------------------------------- normalisation

TEST(Normalization, MatchesHandComputation) {
  // 2 images, 3 channels, 4x4.
  //   channel 0: image 0 all 0, image 1 all 255           -> mean 0.5, std 0.5
  //   channel 1: all 51                                   -> mean 0.2, std 0
  //   channel 2: each image half 0, half 102 (by column)  -> mean 0.2, std 0.2
  Dataset d = make_dataset(2, 3, 4, 4);
  for (std::size_t i = 0; i < 2; ++i) {
    std::uint8_t* img = d.images.data() + i * d.image_bytes();
    for (int k = 0; k < 16; ++k) {
      img[k] = i == 0 ? 0 : 255;
      img[16 + k] = 51;
      img[32 + k] = (k % 4) < 2 ? 0 : 102;
    }
  }
  const Normalization norm = compute_normalization(d);
  ASSERT_EQ(norm.mean.size(), 3u);
  ASSERT_EQ(norm.std.size(), 3u);
  EXPECT_NEAR(norm.mean[0], 0.5, 1e-7);
  EXPECT_NEAR(norm.std[0], 0.5, 1e-7);
  EXPECT_NEAR(norm.mean[1], 0.2, 1e-7);
  EXPECT_NEAR(norm.std[1], 0.0, 1e-7);
  EXPECT_NEAR(norm.mean[2], 0.2, 1e-7);
  EXPECT_NEAR(norm.std[2], 0.2, 1e-7);
}

TEST(Normalization, MatchesNaiveDoubleLoopOnOddShape) {
  const Dataset d = make_dataset(7, 5, 9, 7, /*seed=*/42);
  const Normalization norm = compute_normalization(d);
  for (int c = 0; c < d.channels; ++c) {
    double sum = 0, count = 0;
    for (std::size_t i = 0; i < d.size(); ++i)
      for (int y = 0; y < d.height; ++y)
        for (int x = 0; x < d.width; ++x, ++count) sum += raw(d, i, c, y, x) / 255.0;
    const double mean = sum / count;
    double sq = 0;
    for (std::size_t i = 0; i < d.size(); ++i)
      for (int y = 0; y < d.height; ++y)
        for (int x = 0; x < d.width; ++x) {
          const double e = raw(d, i, c, y, x) / 255.0 - mean;
          sq += e * e;
        }
    EXPECT_NEAR(norm.mean[c], mean, 1e-6) << "channel " << c;
    EXPECT_NEAR(norm.std[c], std::sqrt(sq / count), 1e-6) << "channel " << c;
  }
}

TEST(Normalization, EmptyDatasetIsAnError) {
  Dataset d = make_dataset(0, 3, 4, 4);
  EXPECT_THROW(compute_normalization(d), Error);
}

// ---------------------------------------------------------------- prepare_image

TEST(PrepareImage, NoCropNoFlipIsPlainNormalisation) {
  const Dataset d = make_dataset(3, 3, 4, 4);
  const Normalization norm = compute_normalization(d);
  const std::vector<float> out = prepared(d, 2, norm, 0, 0, false);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 4; ++x)
        EXPECT_FLOAT_EQ(out[(c * 4 + y) * 4 + x], normalised(norm, c, raw(d, 2, c, y, x)))
            << c << "," << y << "," << x;
}

TEST(PrepareImage, CropShiftMovesPixelsAndPadsWithNormalisedZero) {
  const Dataset d = make_dataset(2, 3, 6, 5);
  const Normalization norm = some_norm(3);
  const int H = 6, W = 5;
  const std::vector<float> out = prepared(d, 1, norm, /*dy=*/+1, /*dx=*/-2, false);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) {
        const float got = out[(c * H + y) * W + x];
        if (y == H - 1 || x < 2) {  // window hangs over the bottom and left edges
          EXPECT_FLOAT_EQ(got, normalised(norm, c, 0)) << c << "," << y << "," << x;
        } else {
          EXPECT_FLOAT_EQ(got, normalised(norm, c, raw(d, 1, c, y + 1, x - 2)))
              << c << "," << y << "," << x;
        }
      }
}

TEST(PrepareImage, FlipMirrors) {
  const Dataset d = make_dataset(1, 2, 3, 5);
  const Normalization norm = some_norm(2);
  const std::vector<float> out = prepared(d, 0, norm, 0, 0, true);
  for (int c = 0; c < 2; ++c)
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 5; ++x)
        EXPECT_FLOAT_EQ(out[(c * 3 + y) * 5 + x], normalised(norm, c, raw(d, 0, c, y, 4 - x)));
}

TEST(PrepareImage, CropThenFlip) {
  const Dataset d = make_dataset(1, 3, 6, 5);
  const Normalization norm = some_norm(3);
  const int H = 6, W = 5;
  const std::vector<float> out = prepared(d, 0, norm, /*dy=*/+1, /*dx=*/-2, true);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) {
        // The cropped window (as in CropShift...) mirrored: its padded columns 0, 1 end
        // up at W-1, W-2.
        const float got = out[(c * H + y) * W + x];
        if (y == H - 1 || x >= W - 2) {
          EXPECT_FLOAT_EQ(got, normalised(norm, c, 0)) << c << "," << y << "," << x;
        } else {
          EXPECT_FLOAT_EQ(got, normalised(norm, c, raw(d, 0, c, y + 1, (W - 1 - x) - 2)))
              << c << "," << y << "," << x;
        }
      }
}

TEST(PrepareImage, MatchesNaiveFormulaForEveryOffsetOnOddShapes) {
  struct Shape { int c, h, w; };
  for (const Shape s : {Shape{1, 5, 5}, Shape{3, 9, 7}, Shape{13, 3, 11}, Shape{3, 32, 32}}) {
    const Dataset d = make_dataset(2, s.c, s.h, s.w, /*seed=*/7);
    const Normalization norm = some_norm(s.c);
    for (int dy = -6; dy <= 6; ++dy)
      for (int dx = -6; dx <= 6; ++dx)
        for (bool flip : {false, true}) {
          const std::vector<float> want = naive_prepare(d, 1, norm, dy, dx, flip);
          const std::vector<float> got = prepared(d, 1, norm, dy, dx, flip);
          for (std::size_t k = 0; k < want.size(); ++k) {
            ASSERT_FLOAT_EQ(got[k], want[k])
                << s.c << "x" << s.h << "x" << s.w << " dy " << dy << " dx " << dx
                << " flip " << flip << " element " << k;
          }
        }
  }
}

TEST(PrepareImage, RejectsBadIndexAndChannelMismatch) {
  const Dataset d = make_dataset(2, 3, 4, 4);
  std::vector<float> out(d.image_bytes());
  EXPECT_THROW(prepare_image(d, 2, some_norm(3), 0, 0, false, out.data()), Error);
  EXPECT_THROW(prepare_image(d, 0, some_norm(1), 0, 0, false, out.data()), Error);
}

// ---------------------------------------------------------------- plan and loader

TEST(LoaderPlan, DependsOnlyOnSeedAndEpoch) {
  LoaderOptions o;
  o.seed = 123;
  const EpochPlan a = plan_epoch(200, o, 3), b = plan_epoch(200, o, 3);
  EXPECT_EQ(a.order, b.order);
  for (std::size_t i = 0; i < 200; ++i) {
    EXPECT_EQ(a.augment[i].dy, b.augment[i].dy);
    EXPECT_EQ(a.augment[i].dx, b.augment[i].dx);
    EXPECT_EQ(a.augment[i].flip, b.augment[i].flip);
  }
  EXPECT_NE(plan_epoch(200, o, 4).order, a.order);
  o.seed = 124;
  EXPECT_NE(plan_epoch(200, o, 3).order, a.order);
}

// Data-parallel shards: disjoint, equally long, covering floor(n / W) * W examples,
// each example with the augmentation it has in the one-process plan.
TEST(LoaderPlan, ShardsSplitTheOneProcessPlan) {
  LoaderOptions o;
  o.seed = 7;
  const std::size_t n = 203;
  const EpochPlan whole = plan_epoch(n, o, 2);
  o.shards = 3;
  std::vector<int> seen(n, 0);
  for (int r = 0; r < 3; ++r) {
    o.shard = r;
    const EpochPlan part = plan_epoch(n, o, 2);
    ASSERT_EQ(part.order.size(), n / 3) << "shard " << r;
    for (std::size_t i = 0; i < part.order.size(); ++i) {
      const std::size_t p = i * 3 + static_cast<std::size_t>(r);
      EXPECT_EQ(part.order[i], whole.order[p]);
      EXPECT_EQ(part.augment[i].dy, whole.augment[p].dy);
      EXPECT_EQ(part.augment[i].flip, whole.augment[p].flip);
      ++seen[static_cast<std::size_t>(part.order[i])];
    }
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), static_cast<long>(n / 3 * 3));
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 0), static_cast<long>(n % 3));
}

TEST(Loader, ShardedLoaderYieldsItsShard) {
  const Dataset d = make_dataset(21, 1, 4, 4);
  LoaderOptions o;
  o.batch_size = 4;
  o.seed = 5;
  o.shards = 2;
  o.shard = 1;
  Loader loader(d, some_norm(1), o);
  EXPECT_EQ(loader.batches_per_epoch(), 3u);  // 10 examples: 4 + 4 + 2
  loader.start_epoch(0);
  std::vector<std::int64_t> got;
  Batch b;
  while (loader.next(b)) got.insert(got.end(), b.indices.begin(), b.indices.end());
  EXPECT_EQ(got, plan_epoch(d.size(), o, 0).order);
  o.shard = 2;
  EXPECT_THROW(Loader(d, some_norm(1), o), Error);
}

TEST(LoaderPlan, AugmentationCoversTheRangeAndLeavesOrderAlone) {
  LoaderOptions o;
  o.seed = 9;
  const EpochPlan plan = plan_epoch(2000, o, 0);
  std::vector<int> dy_count(9, 0), dx_count(9, 0);
  int flips = 0;
  for (const Augmentation& a : plan.augment) {
    ASSERT_GE(a.dy, -4);
    ASSERT_LE(a.dy, 4);
    ASSERT_GE(a.dx, -4);
    ASSERT_LE(a.dx, 4);
    ++dy_count[a.dy + 4];
    ++dx_count[a.dx + 4];
    flips += a.flip;
  }
  for (int k = 0; k < 9; ++k) {
    EXPECT_GT(dy_count[k], 150) << "dy " << k - 4;  // expected 222 each
    EXPECT_GT(dx_count[k], 150) << "dx " << k - 4;
  }
  EXPECT_GT(flips, 900);
  EXPECT_LT(flips, 1100);

  o.augment = false;
  const EpochPlan plain = plan_epoch(2000, o, 0);
  EXPECT_EQ(plain.order, plan.order);
  for (const Augmentation& a : plain.augment) {
    ASSERT_EQ(a.dy, 0);
    ASSERT_EQ(a.dx, 0);
    ASSERT_FALSE(a.flip);
  }
}

TEST(LoaderPlan, StreamIsPinned) {
  // Resumed runs rely on this stream: changing it changes every run's data order.
  LoaderOptions o;
  o.seed = 0;
  const EpochPlan plan = plan_epoch(10, o, 0);
  std::vector<std::int64_t> sorted = plan.order;
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::int64_t> identity(10);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_EQ(sorted, identity);
  EXPECT_EQ(plan.order, (std::vector<std::int64_t>{1, 4, 2, 3, 0, 8, 6, 5, 9, 7}));
}

TEST(Loader, EveryIndexOncePerEpochWithShortLastBatch) {
  const Dataset d = make_dataset(10, 3, 4, 4);
  LoaderOptions o;
  o.batch_size = 4;
  o.seed = 5;
  Loader loader(d, compute_normalization(d), o);
  EXPECT_EQ(loader.batches_per_epoch(), 3u);
  for (int epoch = 0; epoch < 3; ++epoch) {
    const std::vector<Batch> batches = whole_epoch(loader, epoch);
    ASSERT_EQ(batches.size(), 3u);
    EXPECT_EQ(batches[0].size, 4);
    EXPECT_EQ(batches[1].size, 4);
    EXPECT_EQ(batches[2].size, 2);
    for (const Batch& b : batches) {
      EXPECT_EQ(b.images.size(), b.size * d.image_bytes());
      ASSERT_EQ(b.labels.size(), static_cast<std::size_t>(b.size));
      ASSERT_EQ(b.indices.size(), static_cast<std::size_t>(b.size));
      for (int j = 0; j < b.size; ++j) EXPECT_EQ(b.labels[j], d.labels[b.indices[j]]);
    }
    std::vector<std::int64_t> order = epoch_order(batches);
    std::sort(order.begin(), order.end());
    std::vector<std::int64_t> identity(10);
    std::iota(identity.begin(), identity.end(), 0);
    EXPECT_EQ(order, identity) << "epoch " << epoch;
  }
}

TEST(Loader, SameSeedAndEpochGiveIdenticalBatchesAcrossInstances) {
  const Dataset d = make_dataset(37, 3, 8, 8);
  const Normalization norm = compute_normalization(d);
  LoaderOptions o;
  o.batch_size = 8;
  o.seed = 77;
  o.prefetch = 2;
  Loader a(d, norm, o), b(d, norm, o);
  for (int epoch : {0, 1, 5}) {
    const std::vector<Batch> from_a = whole_epoch(a, epoch);
    const std::vector<Batch> from_b = whole_epoch(b, epoch);
    expect_identical(from_a, from_b);
  }
}

TEST(Loader, DifferentEpochsGiveDifferentOrders) {
  const Dataset d = make_dataset(50, 1, 2, 2);
  LoaderOptions o;
  o.batch_size = 16;
  Loader loader(d, compute_normalization(d), o);
  const std::vector<std::int64_t> e0 = epoch_order(whole_epoch(loader, 0));
  const std::vector<std::int64_t> e1 = epoch_order(whole_epoch(loader, 1));
  EXPECT_NE(e0, e1);
}

TEST(Loader, NoShuffleGivesIdentityOrder) {
  const Dataset d = make_dataset(11, 1, 3, 3);
  LoaderOptions o;
  o.batch_size = 3;
  o.shuffle = false;
  Loader loader(d, compute_normalization(d), o);
  std::vector<std::int64_t> identity(11);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_EQ(epoch_order(whole_epoch(loader, 0)), identity);
  EXPECT_EQ(epoch_order(whole_epoch(loader, 4)), identity);
}

TEST(Loader, AugmentOffIsPlainPreparedImage) {
  const Dataset d = make_dataset(13, 3, 9, 7);
  const Normalization norm = compute_normalization(d);
  LoaderOptions o;
  o.batch_size = 5;
  o.augment = false;
  Loader loader(d, norm, o);
  for (const Batch& b : whole_epoch(loader, 2)) {
    for (int j = 0; j < b.size; ++j) {
      const std::vector<float> want = prepared(d, b.indices[j], norm, 0, 0, false);
      EXPECT_TRUE(same_bits(want, b.images.data() + j * d.image_bytes())) << b.indices[j];
    }
  }
}

TEST(Loader, AugmentedImagesFollowThePlan) {
  const Dataset d = make_dataset(45, 3, 12, 10);
  const Normalization norm = compute_normalization(d);
  LoaderOptions o;
  o.batch_size = 7;
  o.seed = 2024;
  Loader loader(d, norm, o);
  const int epoch = 3;
  const EpochPlan plan = plan_epoch(d.size(), o, epoch);
  const std::vector<Batch> batches = whole_epoch(loader, epoch);
  EXPECT_EQ(epoch_order(batches), plan.order);
  std::size_t position = 0;
  int cropped = 0, flipped = 0;
  for (const Batch& b : batches) {
    for (int j = 0; j < b.size; ++j, ++position) {
      const Augmentation& a = plan.augment[position];
      const std::vector<float> want = prepared(d, b.indices[j], norm, a.dy, a.dx, a.flip);
      EXPECT_TRUE(same_bits(want, b.images.data() + j * d.image_bytes()))
          << "position " << position;
      cropped += a.dy != 0 || a.dx != 0;
      flipped += a.flip;
    }
  }
  EXPECT_GT(cropped, 0);
  EXPECT_GT(flipped, 0);
}

TEST(Loader, StartEpochAgainMidEpoch) {
  const Dataset d = make_dataset(40, 3, 4, 4);
  const Normalization norm = compute_normalization(d);
  LoaderOptions o;
  o.batch_size = 3;
  o.prefetch = 2;
  Loader fresh(d, norm, o);
  const std::vector<Batch> want0 = whole_epoch(fresh, 0);
  const std::vector<Batch> want1 = whole_epoch(fresh, 1);

  Loader loader(d, norm, o);
  Batch b;
  loader.start_epoch(0);
  ASSERT_TRUE(loader.next(b));
  loader.start_epoch(1);  // abandons epoch 0 with batches still queued
  std::vector<Batch> got1;
  while (loader.next(b)) got1.push_back(b);
  expect_identical(got1, want1);

  loader.start_epoch(0);
  ASSERT_TRUE(loader.next(b));
  ASSERT_TRUE(loader.next(b));
  expect_identical(whole_epoch(loader, 0), want0);  // same epoch restarted from the top
}

TEST(Loader, NextIsFalseBeforeStartAndAfterTheEnd) {
  const Dataset d = make_dataset(5, 1, 2, 2);
  LoaderOptions o;
  o.batch_size = 2;
  Loader loader(d, compute_normalization(d), o);
  Batch b;
  EXPECT_FALSE(loader.next(b));
  loader.start_epoch(0);
  EXPECT_EQ(loader.wait_seconds(), 0.0);
  int batches = 0;
  while (loader.next(b)) ++batches;
  EXPECT_EQ(batches, 3);
  EXPECT_FALSE(loader.next(b));
  EXPECT_FALSE(loader.next(b));
  EXPECT_GE(loader.wait_seconds(), 0.0);
  loader.start_epoch(1);
  EXPECT_EQ(loader.wait_seconds(), 0.0);
}

TEST(Loader, EmptyDatasetHasNoBatches) {
  const Dataset d = make_dataset(0, 3, 4, 4);
  Loader loader(d, some_norm(3), LoaderOptions{});
  EXPECT_EQ(loader.batches_per_epoch(), 0u);
  EXPECT_TRUE(whole_epoch(loader, 0).empty());
}

TEST(Loader, DestructionMidEpochDoesNotHang) {
  const Dataset d = make_dataset(200, 3, 8, 8);
  const Normalization norm = compute_normalization(d);
  LoaderOptions o;
  o.batch_size = 1;
  o.prefetch = 1;
  {
    Loader loader(d, norm, o);  // producer blocked on a full queue
    loader.start_epoch(0);
    Batch b;
    ASSERT_TRUE(loader.next(b));
  }
  {
    Loader loader(d, norm, o);  // destroyed right after starting
    loader.start_epoch(0);
  }
  {
    Loader loader(d, norm, o);  // never started
  }
}

TEST(Loader, ProducerErrorIsRethrownFromNext) {
  Dataset d = make_dataset(10, 3, 4, 4);
  const Normalization norm = compute_normalization(d);
  Loader loader(d, norm, LoaderOptions{});
  d.images.resize(5);  // the loader holds the dataset by reference; now inconsistent
  loader.start_epoch(0);
  Batch b;
  EXPECT_THROW(loader.next(b), Error);
  EXPECT_THROW(loader.next(b), Error);  // until the next start_epoch
  d = make_dataset(10, 3, 4, 4);
  loader.start_epoch(0);
  EXPECT_TRUE(loader.next(b));
}

// The stage hook (what pins batches for a GPU) runs on the loader thread, once per batch,
// after the batch is complete; what it stores travels with the batch; its error stops the
// epoch and is rethrown from next().
TEST(Loader, StageRunsOnTheLoaderThreadOnEveryFinishedBatch) {
  const Dataset d = make_dataset(10, 3, 4, 4);
  LoaderOptions o;
  o.batch_size = 4;
  const std::thread::id consumer = std::this_thread::get_id();
  o.stage = [consumer](Batch& b) {
    if (std::this_thread::get_id() == consumer) throw Error("stage ran on the consumer thread");
    b.staged = std::vector<std::int64_t>(b.labels);  // a copy made from the finished batch
  };
  Loader loader(d, compute_normalization(d), o);
  for (int epoch = 0; epoch < 2; ++epoch) {  // the second epoch reuses the first one's buffers
    const std::vector<Batch> batches = whole_epoch(loader, epoch);
    ASSERT_EQ(batches.size(), 3u);
    for (const Batch& b : batches) {
      const auto* copy = std::any_cast<std::vector<std::int64_t>>(&b.staged);
      ASSERT_NE(copy, nullptr);
      EXPECT_EQ(*copy, b.labels);
    }
  }
  o.stage = [](Batch&) { throw Error("stage failed"); };
  Loader failing(d, compute_normalization(d), o);
  failing.start_epoch(0);
  Batch b;
  EXPECT_THROW(failing.next(b), Error);
}

TEST(Loader, WithoutStageBatchesCarryNothingStaged) {
  const Dataset d = make_dataset(6, 1, 2, 2);
  Loader loader(d, compute_normalization(d), LoaderOptions{});
  for (const Batch& b : whole_epoch(loader, 0)) EXPECT_FALSE(b.staged.has_value());
}

TEST(Loader, RejectsBadOptionsAndNormalization) {
  const Dataset d = make_dataset(4, 3, 4, 4);
  LoaderOptions o;
  o.batch_size = 0;
  EXPECT_THROW(Loader(d, some_norm(3), o), Error);
  o = LoaderOptions{};
  o.prefetch = 0;
  EXPECT_THROW(Loader(d, some_norm(3), o), Error);
  EXPECT_THROW(Loader(d, some_norm(2), LoaderOptions{}), Error);
}

}  // namespace
}  // namespace mapgate

// Engine forward on random weights: against a naive forward written here that computes
// every map and then multiplies by the masks (the LibTorch semantics of forward_gated; its
// transitions convolve and then pool, the engine pools first), fast kernels against *_ref
// kernels, gated-all-on against dense, NaN-poisoned buffers, batch threads, and MACs (the
// paper's count and the executed count) against hand counts.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "common/error.h"
#include "engine/engine.h"

namespace mapgate {
namespace {

DenseNetConfig small(bool bc = false, int image_size = 13) {
  DenseNetConfig c;
  c.depth = bc ? 16 : 10;  // 2 layers per block
  c.bc = bc;
  c.growth = 5;
  c.num_classes = 7;
  c.in_channels = 3;
  c.image_size = image_size;  // 13 -> 6 -> 3: odd sizes and floor pooling
  c.gated = true;
  return c;
}

std::vector<float> random_images(const DenseNetConfig& c, int n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(static_cast<std::size_t>(n) * c.in_channels * c.image_size * c.image_size);
  for (auto& x : v) x = normal(rng);
  return v;
}

std::vector<std::uint8_t> random_masks(const DenseNetConfig& c, double keep, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::bernoulli_distribution on(keep);
  std::vector<std::uint8_t> m(static_cast<std::size_t>(c.dense_layers()) * c.growth);
  for (auto& x : m) x = on(rng);
  return m;
}

// Gate weights 0 and biases 50: p = 1 - eps > tau for every map of every input.
void force_gates_on(Weights& w) {
  for (auto& [name, t] : w.tensors)
    if (name.rfind("gates.", 0) == 0)
      for (auto& v : t.data) v = name.find(".bias") != std::string::npos ? 50.f : 0.f;
}

// --- naive forward, double precision: compute every map, then mask (forward_gated) ---
using Maps = std::vector<double>;  // (C, H, W)

struct Naive {
  const Weights& w;
  const std::vector<float>& t(const std::string& name) const { return w.tensors.at(name).data; }

  Maps conv(const Maps& x, int cin, int s, const std::vector<float>& weight, int cout, int kernel) const {
    Maps y(static_cast<std::size_t>(cout) * s * s, 0.0);
    const int r = kernel / 2;
    for (int o = 0; o < cout; ++o)
      for (int c = 0; c < cin; ++c)
        for (int dy = 0; dy < kernel; ++dy)
          for (int dx = 0; dx < kernel; ++dx) {
            const double k = weight[((o * cin + c) * kernel + dy) * kernel + dx];
            for (int yy = 0; yy < s; ++yy)
              for (int xx = 0; xx < s; ++xx) {
                const int iy = yy + dy - r, ix = xx + dx - r;
                if (iy >= 0 && iy < s && ix >= 0 && ix < s) y[(o * s + yy) * s + xx] += k * x[(c * s + iy) * s + ix];
              }
          }
    return y;
  }
  // relu(BN(x)) * keep, BN in eval mode with the unfolded statistics.
  Maps bn_relu(const Maps& x, int channels, int s, const std::string& name, const std::vector<double>& keep) const {
    Maps y(x.size());
    for (int c = 0; c < channels; ++c) {
      const double g = t(name + ".weight")[c], b = t(name + ".bias")[c], m = t(name + ".running_mean")[c],
                   v = t(name + ".running_var")[c];
      for (int q = 0; q < s * s; ++q) {
        const double z = (x[c * s * s + q] - m) / std::sqrt(v + w.bn_eps) * g + b;
        y[c * s * s + q] = std::max(0.0, z) * keep[c];
      }
    }
    return y;
  }

  std::vector<double> forward(const float* image, const std::uint8_t* masks) const {
    const auto& c = w.config;
    const int k = c.growth;
    int s = c.image_size, ch = c.stem_channels(), l = 0;
    Maps x(image, image + c.in_channels * s * s);
    Maps h = conv(x, c.in_channels, s, t("stem.weight"), ch, 3);
    std::vector<double> keep(ch, 1.0);
    for (int b = 0; b < 3; ++b) {
      for (int i = 0; i < c.layers_per_block(); ++i, ++l) {
        const std::string name = "block" + std::to_string(b + 1) + "." + std::to_string(i);
        Maps y;
        if (c.bc) {
          auto a = bn_relu(h, ch, s, name + ".norm1", keep);
          auto z = conv(a, ch, s, t(name + ".conv1.weight"), 4 * k, 1);
          y = conv(bn_relu(z, 4 * k, s, name + ".norm2", std::vector<double>(4 * k, 1.0)), 4 * k, s,
                   t(name + ".conv2.weight"), k, 3);
        } else {
          y = conv(bn_relu(h, ch, s, name + ".norm", keep), ch, s, t(name + ".conv.weight"), k, 3);
        }
        for (int j = 0; j < k; ++j) {
          const double m = masks[l * k + j];
          for (int q = 0; q < s * s; ++q) y[j * s * s + q] *= m;
          keep.push_back(m);
        }
        h.insert(h.end(), y.begin(), y.end());
        ch += k;
      }
      if (b < 2) {
        const std::string name = "trans" + std::to_string(b + 1);
        const int out = c.transition_out(ch);
        // As LibTorch runs it: conv1x1 at s x s, then 2x2 average pooling (the engine pools
        // first; keep this order, so that the comparison checks the reordering).
        auto z = conv(bn_relu(h, ch, s, name + ".norm", keep), ch, s, t(name + ".conv.weight"), out, 1);
        const int ns = s / 2;
        h.assign(static_cast<std::size_t>(out) * ns * ns, 0.0);
        for (int o = 0; o < out; ++o)
          for (int yy = 0; yy < ns; ++yy)
            for (int xx = 0; xx < ns; ++xx)
              h[(o * ns + yy) * ns + xx] = (z[(o * s + 2 * yy) * s + 2 * xx] + z[(o * s + 2 * yy) * s + 2 * xx + 1] +
                                            z[(o * s + 2 * yy + 1) * s + 2 * xx] +
                                            z[(o * s + 2 * yy + 1) * s + 2 * xx + 1]) / 4;
        ch = out;
        s = ns;
        keep.assign(ch, 1.0);
      }
    }
    auto a = bn_relu(h, ch, s, "norm", keep);
    std::vector<double> logits(c.num_classes);
    for (int o = 0; o < c.num_classes; ++o) {
      double sum = t("classifier.bias")[o];
      for (int ci = 0; ci < ch; ++ci) {
        double mean = 0;
        for (int q = 0; q < s * s; ++q) mean += a[ci * s * s + q];
        sum += t("classifier.weight")[o * ch + ci] * mean / (s * s);
      }
      logits[o] = sum;
    }
    return logits;
  }
};

void expect_logits_near(const std::vector<float>& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tol * (1 + std::fabs(want[i]))) << "first difference at logit " << i;
}

TEST(Engine, GivenMasksMatchNaiveComputeThenMask) {
  // 13 -> 6 -> 3 (odd: floor pooling drops a row and a column) and 12 -> 6 -> 3 (even).
  for (const auto& [bc, size] : {std::pair{false, 13}, std::pair{true, 13}, std::pair{false, 12}}) {
    const DenseNetConfig c = small(bc, size);
    const Weights w = random_weights(c, /*seed=*/11);
    const Naive naive{w};
    const auto images = random_images(c, 1, 5);
    for (double keep : {1.0, 0.5, 0.2, 0.0}) {
      SCOPED_TRACE(std::string(bc ? "bc" : "plain") + " size " + std::to_string(size) + " keep " +
                   std::to_string(keep));
      const auto masks = random_masks(c, keep, 17);
      for (const KernelSet& kernels : {kFastKernels, kRefKernels}) {
        SCOPED_TRACE(kernels.name);
        EngineOptions o;
        o.mode = EngineMode::kGiven;
        o.kernels = kernels;
        o.poison = true;
        Engine engine(w, o);
        std::vector<float> logits(c.num_classes);
        EngineStats stats;
        engine.forward(images.data(), logits.data(), &stats, masks.data());
        expect_logits_near(logits, naive.forward(images.data(), masks.data()), 1e-4);
        EXPECT_EQ(stats.masks, masks);
      }
    }
  }
}

TEST(Engine, GatedAllOnEqualsDense) {
  const DenseNetConfig c = small();
  Weights w = random_weights(c, /*seed=*/2);
  force_gates_on(w);
  const auto images = random_images(c, 3, 9);
  EngineOptions dense_options;
  dense_options.mode = EngineMode::kDense;
  Engine dense(w, dense_options), gated(w);
  const std::vector<std::uint8_t> ones(static_cast<std::size_t>(c.dense_layers()) * c.growth, 1);
  EngineOptions given_options;
  given_options.mode = EngineMode::kGiven;
  Engine given(w, given_options);
  for (int i = 0; i < 3; ++i) {
    const float* image = images.data() + i * c.in_channels * c.image_size * c.image_size;
    std::vector<float> a(c.num_classes), b(c.num_classes), d(c.num_classes);
    EngineStats stats;
    dense.forward(image, a.data());
    gated.forward(image, b.data(), &stats);
    given.forward(image, d.data(), nullptr, ones.data());
    EXPECT_EQ(a, b);  // same kernels, same order: bit for bit
    EXPECT_EQ(a, d);
    EXPECT_EQ(stats.masks, ones);
  }
}

TEST(Engine, GatedMasksFollowProbabilities) {
  DenseNetConfig c = small();
  c.threshold = 0.5;
  c.p_clamp = 0.01;
  const Weights w = random_weights(c, /*seed=*/4, /*gate_bias=*/0.0);
  Engine engine(w);
  const auto images = random_images(c, 8, 1);
  int on = 0, total = 0;
  for (int i = 0; i < 8; ++i) {
    std::vector<float> logits(c.num_classes);
    EngineStats stats;
    engine.forward(images.data() + i * c.in_channels * c.image_size * c.image_size, logits.data(), &stats);
    ASSERT_EQ(stats.probs.size(), stats.masks.size());
    for (std::size_t j = 0; j < stats.masks.size(); ++j) {
      ASSERT_GE(stats.probs[j], 0.01f - 1e-7f);
      ASSERT_LE(stats.probs[j], 0.99f + 1e-7f);
      ASSERT_EQ(stats.masks[j], stats.probs[j] > 0.5f ? 1 : 0) << "map " << j;
      on += stats.masks[j];
      ++total;
    }
    for (float v : logits) ASSERT_TRUE(std::isfinite(v));
    // The gated forward equals the given-mask forward under its own masks.
    EngineOptions o;
    o.mode = EngineMode::kGiven;
    Engine given(w, o);
    std::vector<float> again(c.num_classes);
    given.forward(images.data() + i * c.in_channels * c.image_size * c.image_size, again.data(), nullptr,
                  stats.masks.data());
    EXPECT_EQ(logits, again);
  }
  EXPECT_GT(on, 0) << "random gates should keep some maps";
  EXPECT_LT(on, total) << "random gates should drop some maps";
}

TEST(Engine, PoisonedSwitchedOffMapsKeepLogitsFinite) {
  const DenseNetConfig c = small();
  const Weights w = random_weights(c, /*seed=*/8);
  const auto images = random_images(c, 1, 3);
  for (double keep : {0.7, 0.3, 0.0}) {
    SCOPED_TRACE(keep);
    const auto masks = random_masks(c, keep, 23);
    EngineOptions o;
    o.mode = EngineMode::kGiven;
    Engine clean(w, o);
    o.poison = true;
    Engine poisoned(w, o);
    std::vector<float> a(c.num_classes), b(c.num_classes);
    clean.forward(images.data(), a.data(), nullptr, masks.data());
    poisoned.forward(images.data(), b.data(), nullptr, masks.data());
    for (float v : b) ASSERT_TRUE(std::isfinite(v));
    EXPECT_EQ(a, b);
  }
}

TEST(Engine, BatchThreadsEqualSingleExamples) {
  const DenseNetConfig c = small();
  const Weights w = random_weights(c, /*seed=*/5, /*gate_bias=*/0.5);
  const int n = 7;
  const auto images = random_images(c, n, 2);
  Engine engine(w);
  std::vector<float> batch(n * c.num_classes), single(n * c.num_classes);
  std::vector<EngineStats> stats(n);
  engine.forward_batch(images.data(), n, batch.data(), stats.data(), /*threads=*/3);
  for (int i = 0; i < n; ++i) {
    EngineStats s;
    engine.forward(images.data() + i * c.in_channels * c.image_size * c.image_size, single.data() + i * c.num_classes,
                   &s);
    EXPECT_EQ(s.masks, stats[i].masks);
    EXPECT_EQ(s.macs, stats[i].macs);
    EXPECT_EQ(s.macs_executed, stats[i].macs_executed);
  }
  EXPECT_EQ(batch, single);
}

// Fewer examples than threads: the threads share each example's pass (team.h). Each map
// is computed whole by one thread, and a layer's outputs are dealt out in the groups one
// thread's convolution call forms (conv_group_rows), whose size decides the float
// arithmetic: logits, masks, probabilities and MACs equal the one-thread pass bit for
// bit, in every mode, plain and BC, with poisoned buffers (a map read before the thread
// that writes it has finished would be NaN). 3 and 4 threads split growth 5 unevenly.
TEST(Engine, SharedPassEqualsOneThread) {
  for (bool bc : {false, true})
    for (EngineMode mode : {EngineMode::kGated, EngineMode::kDense, EngineMode::kGiven}) {
      SCOPED_TRACE(std::string(bc ? "BC" : "plain") + " mode " + std::to_string(static_cast<int>(mode)));
      const DenseNetConfig c = small(bc);
      const Weights w = random_weights(c, /*seed=*/6, /*gate_bias=*/0.5);
      const int n = 2;
      const auto images = random_images(c, n, 4);
      std::vector<std::uint8_t> masks;
      for (int i = 0; i < n; ++i) {
        const auto m = random_masks(c, 0.5, 30 + i);
        masks.insert(masks.end(), m.begin(), m.end());
      }
      EngineOptions o;
      o.mode = mode;
      o.poison = true;
      Engine engine(w, o);
      const std::uint8_t* given = mode == EngineMode::kGiven ? masks.data() : nullptr;
      std::vector<float> one(n * c.num_classes);
      std::vector<EngineStats> one_stats(n);
      engine.forward_batch(images.data(), n, one.data(), one_stats.data(), /*threads=*/1, given);
      for (int threads : {3, 4}) {  // n < threads: shared; 4 splits 5 maps 1,1,1,2
        std::vector<float> shared(n * c.num_classes, std::nanf(""));
        std::vector<EngineStats> stats(n);
        engine.forward_batch(images.data(), n, shared.data(), stats.data(), threads, given);
        SCOPED_TRACE(std::to_string(threads) + " threads");
        EXPECT_EQ(shared, one);
        for (int i = 0; i < n; ++i) {
          EXPECT_EQ(stats[i].masks, one_stats[i].masks);
          EXPECT_EQ(stats[i].probs, one_stats[i].probs);
          EXPECT_EQ(stats[i].macs, one_stats[i].macs);
          EXPECT_EQ(stats[i].macs_executed, one_stats[i].macs_executed);
        }
      }
    }
}

TEST(Engine, BatchPoolReusedAcrossCallsAndThreadCounts) {
  // The batch threads persist between calls: growing, shrinking and growing again must
  // give the single-example logits every time, also where the threads outnumber the
  // examples and share them.
  const DenseNetConfig c = small();
  const Weights w = random_weights(c, /*seed=*/8, /*gate_bias=*/0.5);
  const int n = 5;
  const auto images = random_images(c, n, 3);
  Engine engine(w);
  std::vector<float> single(n * c.num_classes);
  for (int i = 0; i < n; ++i)
    engine.forward(images.data() + i * c.in_channels * c.image_size * c.image_size, single.data() + i * c.num_classes);
  for (int threads : {2, 4, 1, 3, 2, 8}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    std::vector<float> batch(n * c.num_classes, std::nanf(""));
    engine.forward_batch(images.data(), n, batch.data(), nullptr, threads);
    EXPECT_EQ(batch, single);
  }
  Engine moved = std::move(engine);  // the pool moves with the engine
  std::vector<float> batch(n * c.num_classes, std::nanf(""));
  moved.forward_batch(images.data(), n, batch.data(), nullptr, /*threads=*/3);
  EXPECT_EQ(batch, single);
}

TEST(Engine, MacsOfDenseNet40MatchHandCount) {
  DenseNetConfig c;  // DenseNet-40, k = 12
  c.gated = true;
  Weights w = random_weights(c, /*seed=*/1);
  force_gates_on(w);
  const auto image = random_images(c, 1, 1);
  std::vector<float> logits(c.num_classes);
  EngineStats stats;
  EngineOptions o;
  o.mode = EngineMode::kDense;
  Engine dense(w, o);
  dense.forward(image.data(), logits.data(), &stats);
  EXPECT_EQ(stats.macs, 264812928);  // docs/design.md §1
  // Executed: the transitions' 1x1 convolutions run after pooling, at a quarter of the
  // pixels: 160 * 160 * (32^2 - 16^2) + 304 * 304 * (16^2 - 8^2) fewer.
  const std::int64_t transitions_saved = 160LL * 160 * (1024 - 256) + 304LL * 304 * (256 - 64);
  EXPECT_EQ(transitions_saved, 37404672);
  EXPECT_EQ(stats.macs_executed, 264812928 - transitions_saved);
  Engine gated(w);
  gated.forward(image.data(), logits.data(), &stats);
  // Gates: k * sum of C_in = 12 * (sum_{i<12} (16 + 12 i) + (160 + 12 i) + (304 + 12 i)) = 12 * 8136.
  EXPECT_EQ(stats.macs, 264812928 + 97632);
  EXPECT_EQ(stats.macs_executed, 264812928 + 97632 - transitions_saved);
}

TEST(Engine, MacsUnderMasksMatchHandCount) {
  const DenseNetConfig c = small();  // 13x13 -> 6x6 -> 3x3, stem 16, k 5, 2 layers per block
  const Weights w = random_weights(c, /*seed=*/6);
  EngineOptions o;
  o.mode = EngineMode::kGiven;
  Engine engine(w, o);
  // Layers keep 5, 0 | 2, 3 | 1, 5 maps.
  std::vector<std::uint8_t> masks(6 * 5, 0);
  const int kept[6] = {5, 0, 2, 3, 1, 5};
  for (int l = 0; l < 6; ++l)
    for (int j = 0; j < kept[l]; ++j) masks[l * 5 + 4 - j] = 1;
  const auto image = random_images(c, 1, 1);
  std::vector<float> logits(c.num_classes);
  EngineStats stats;
  engine.forward(image.data(), logits.data(), &stats, masks.data());
  const std::int64_t stem = 9 * 3 * 16 * 169;
  const std::int64_t block1 = 9 * 16 * 5 * 169 + 9 * 21 * 0 * 169;  // inputs 16 on, then 21 on
  const std::int64_t trans1 = 21 * 26 * 169;                        // 21 of 26 maps on -> 26 outputs
  const std::int64_t block2 = 9 * 26 * 2 * 36 + 9 * 28 * 3 * 36;
  const std::int64_t trans2 = 31 * 36 * 36;                         // 31 of 36 on -> 36 outputs
  const std::int64_t block3 = 9 * 36 * 1 * 9 + 9 * 37 * 5 * 9;
  const std::int64_t head = 42 * 7;                                 // 42 of 46 maps on
  // The paper's count: transitions at the block's resolution (13x13, 6x6).
  EXPECT_EQ(stats.macs, stem + block1 + trans1 + block2 + trans2 + block3 + head);
  // Executed: the same, but each transition's 1x1 runs on the pooled plane (6x6, 3x3).
  const std::int64_t trans1_executed = 21 * 26 * 36, trans2_executed = 31 * 36 * 9;
  EXPECT_EQ(stats.macs_executed, stem + block1 + trans1_executed + block2 + trans2_executed + block3 + head);
  EXPECT_EQ(stats.active, std::vector<int>(kept, kept + 6));
}

TEST(Engine, RejectsGivenModeWithoutMasks) {
  const DenseNetConfig c = small();
  EngineOptions o;
  o.mode = EngineMode::kGiven;
  Engine engine(random_weights(c, 1), o);
  const auto image = random_images(c, 1, 1);
  std::vector<float> logits(c.num_classes);
  EXPECT_THROW(engine.forward(image.data(), logits.data()), Error);
}

// A threshold outside [0, 1] (NaN included) is the library's error, not a CLI usage
// error; a negative one means the weight file's own tau.
TEST(Engine, RejectsThresholdsOutsideZeroToOne) {
  Engine engine(random_weights(small(), 1));
  for (double tau : {1.5, std::nan("")}) {
    EngineOptions o;
    o.threshold = tau;
    try {
      engine.set_options(o);
      ADD_FAILURE() << "tau " << tau << " accepted";
    } catch (const UsageError&) {
      ADD_FAILURE() << "a UsageError names a CLI flag; the engine has none";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("engine threshold"), std::string::npos) << e.what();
    }
  }
  EngineOptions o;
  o.threshold = -1;
  EXPECT_NO_THROW(engine.set_options(o));
}

}  // namespace
}  // namespace mapgate

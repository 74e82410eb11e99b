// Every fast engine kernel against its *_ref on odd shapes (channels 1, 3, 13, 17; 9x7
// images) and all-on / all-off / random / single-map masks. Outputs that must be written
// start as NaN; switched-off input maps are NaN, so reading one shows in the result;
// planes that must not be written are checked to still hold NaN.
#include <algorithm>
#include <cmath>
#include <limits>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/kernels/kernels.h"

namespace mapgate {
namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();

class KernelTest : public ::testing::Test {
 public:  // check_conv draws from the fixture's generator
  void SetUp() override { rng_.seed(1234); }
  float uniform(float lo = -1, float hi = 1) { return std::uniform_real_distribution<float>(lo, hi)(rng_); }
  std::vector<float> randoms(std::size_t n) {
    std::vector<float> v(n);
    for (auto& x : v) x = uniform();
    return v;
  }
  // The four masks of a channel count: all, none, random (about half), a single map.
  std::vector<std::pair<std::string, std::vector<int>>> masks(int channels) {
    std::vector<int> all, random;
    for (int c = 0; c < channels; ++c) {
      all.push_back(c);
      if (uniform(0, 1) < 0.5f) random.push_back(c);
    }
    return {{"all", all}, {"none", {}}, {"random", random}, {"single", {channels / 2}}};
  }
  std::mt19937 rng_;
};

bool contains(const std::vector<int>& v, int x) { return std::find(v.begin(), v.end(), x) != v.end(); }

// Expect `got` to match `want` on the planes in `active` and to be NaN on the others.
void expect_planes(const std::vector<float>& got, const std::vector<float>& want, int channels,
                   std::size_t plane, const std::vector<int>& active, float tol) {
  for (int c = 0; c < channels; ++c)
    for (std::size_t q = 0; q < plane; ++q) {
      const std::size_t i = c * plane + q;
      if (contains(active, c)) {
        ASSERT_TRUE(std::isfinite(got[i])) << "channel " << c << " index " << q << " not written or read NaN";
        ASSERT_NEAR(got[i], want[i], tol * (1 + std::fabs(want[i]))) << "channel " << c << " index " << q;
      } else {
        ASSERT_TRUE(std::isnan(got[i])) << "switched-off channel " << c << " index " << q << " was written";
      }
    }
}

// Every variant of a masked convolution that runs on this CPU against its reference.
void check_conv(KernelTest& t, int kernel, const KernelFamily<MaskedConvArgs>& family) {
  const int sizes[][2] = {{9, 7}, {7, 9}, {1, 1}, {8, 8}, {5, 17}, {32, 32}};
  for (int cin : {1, 3, 13, 17})
    for (int cout : {1, 3, 13, 17})
      for (const auto& hw : sizes) {
        const int h = hw[0], w = hw[1];
        const int pad = kernel == 3 ? 1 : 0;
        const std::size_t in_plane = static_cast<std::size_t>(h + 2 * pad) * (w + 2 * pad);
        const std::size_t out_plane = static_cast<std::size_t>(h) * w;
        const auto weight = t.randoms(static_cast<std::size_t>(cout) * cin * kernel * kernel);
        for (const auto& [in_name, in_active] : t.masks(cin))
          for (const auto& [out_name, out_active] : t.masks(cout)) {
            SCOPED_TRACE("conv" + std::to_string(kernel) + " cin " + std::to_string(cin) + " cout " +
                         std::to_string(cout) + " " + std::to_string(h) + "x" + std::to_string(w) +
                         " inputs " + in_name + " outputs " + out_name);
            // Active inputs: random interior, zero border. Switched-off inputs: all NaN.
            std::vector<float> in(cin * in_plane, kNaN);
            for (int c : in_active)
              for (int y = 0; y < h + 2 * pad; ++y)
                for (int x = 0; x < w + 2 * pad; ++x) {
                  const bool border = y < pad || x < pad || y >= h + pad || x >= w + pad;
                  in[c * in_plane + y * (w + 2 * pad) + x] = border ? 0.f : t.uniform();
                }
            MaskedConvArgs a;
            a.height = h;
            a.width = w;
            a.in = in.data();
            a.in_plane = static_cast<std::ptrdiff_t>(in_plane);
            a.in_active = in_active.data();
            a.n_in = static_cast<int>(in_active.size());
            a.weight = weight.data();
            a.in_total = cin;
            a.out_active = out_active.data();
            a.n_out = static_cast<int>(out_active.size());
            a.out_plane = static_cast<std::ptrdiff_t>(out_plane);
            std::vector<float> want(cout * out_plane, kNaN);
            a.out = want.data();
            family.ref.fn(a);
            for (const auto& v : family.fast) {
              if (!v.runs_here()) continue;
              SCOPED_TRACE(v.name);
              std::vector<float> got(cout * out_plane, kNaN);
              a.out = got.data();
              v.fn(a);
              expect_planes(got, want, cout, out_plane, out_active, 1e-5f);
              if (::testing::Test::HasFatalFailure()) return;
            }
          }
      }
}

TEST_F(KernelTest, Conv3x3MatchesReference) {
  check_conv(*this, 3, kConv3x3Family);
}

TEST_F(KernelTest, Conv1x1MatchesReference) {
  check_conv(*this, 1, kConv1x1Family);
}

TEST_F(KernelTest, Conv3x3ReferenceMatchesHandValue) {
  // One input map of ones, one output with weights 1..9: the centre pixel of a 3x3 image
  // sums all taps (45), a corner only four of them (5 + 6 + 8 + 9 = 28 at top-left).
  std::vector<float> in(25, 0.f);
  for (int y = 1; y <= 3; ++y)
    for (int x = 1; x <= 3; ++x) in[y * 5 + x] = 1.f;
  std::vector<float> weight{1, 2, 3, 4, 5, 6, 7, 8, 9}, out(9, kNaN);
  const int zero = 0;
  MaskedConvArgs a;
  a.height = a.width = 3;
  a.in = in.data();
  a.in_plane = 25;
  a.in_active = &zero;
  a.n_in = 1;
  a.weight = weight.data();
  a.in_total = 1;
  a.out_active = &zero;
  a.n_out = 1;
  a.out = out.data();
  a.out_plane = 9;
  conv3x3_masked_f32_ref(a);
  EXPECT_FLOAT_EQ(out[4], 45.f);
  EXPECT_FLOAT_EQ(out[0], 28.f);
  conv3x3_masked_f32(a);
  EXPECT_FLOAT_EQ(out[4], 45.f);
  EXPECT_FLOAT_EQ(out[0], 28.f);
}

TEST_F(KernelTest, BnReluMatchesReference) {
  // 9x7: no full 8-wide row; 8x8 and 5x17: vector rows with and without a tail.
  const int sizes[][2] = {{9, 7}, {8, 8}, {5, 17}};
  for (int channels : {1, 3, 13, 17})
    for (int pad : {0, 1})
      for (const auto& hw : sizes)
        for (const auto& [name, active] : masks(channels)) {
          const int h = hw[0], w = hw[1];
          SCOPED_TRACE("channels " + std::to_string(channels) + " pad " + std::to_string(pad) + " " +
                       std::to_string(h) + "x" + std::to_string(w) + " " + name);
          const std::size_t in_plane = h * w, out_plane = static_cast<std::size_t>(h + 2 * pad) * (w + 2 * pad);
          std::vector<float> in(channels * in_plane, kNaN);
          for (int c : active)
            for (std::size_t q = 0; q < in_plane; ++q) in[c * in_plane + q] = uniform();
          const auto scale = randoms(channels), shift = randoms(channels);
          BnReluArgs a;
          a.height = h;
          a.width = w;
          a.in = in.data();
          a.in_plane = static_cast<std::ptrdiff_t>(in_plane);
          a.active = active.data();
          a.n = static_cast<int>(active.size());
          a.scale = scale.data();
          a.shift = shift.data();
          a.out_plane = static_cast<std::ptrdiff_t>(out_plane);
          a.pad = pad;
          std::vector<float> want(channels * out_plane, kNaN);
          a.out = want.data();
          kBnReluFamily.ref.fn(a);
          for (const auto& v : kBnReluFamily.fast) {
            if (!v.runs_here()) continue;
            SCOPED_TRACE(v.name);
            std::vector<float> got(channels * out_plane, kNaN);
            a.out = got.data();
            v.fn(a);
            for (int c = 0; c < channels; ++c)
              for (int y = 0; y < h + 2 * pad; ++y)
                for (int x = 0; x < w + 2 * pad; ++x) {
                  const std::size_t i = c * out_plane + y * (w + 2 * pad) + x;
                  const bool border = y < pad || x < pad || y >= h + pad || x >= w + pad;
                  if (!contains(active, c) || border) {
                    ASSERT_TRUE(std::isnan(got[i])) << "channel " << c << " y " << y << " x " << x << " written";
                  } else {
                    ASSERT_TRUE(std::isfinite(got[i])) << "channel " << c << " y " << y << " x " << x;
                    ASSERT_FLOAT_EQ(got[i], want[i]);
                    ASSERT_GE(got[i], 0.f);
                  }
                }
          }
        }
}

TEST_F(KernelTest, GapMatchesReference) {
  for (int channels : {1, 3, 13, 17})
    for (const auto& hw : {std::pair{9, 7}, std::pair{1, 1}, std::pair{32, 32}})
      for (const auto& [name, active] : masks(channels)) {
        SCOPED_TRACE("channels " + std::to_string(channels) + " " + name);
        const std::size_t plane = static_cast<std::size_t>(hw.first) * hw.second;
        std::vector<float> in(channels * plane, kNaN);
        for (int c : active)
          for (std::size_t q = 0; q < plane; ++q) in[c * plane + q] = uniform();
        std::vector<float> want(channels, kNaN), got(channels, kNaN);
        gap_masked_f32_ref(hw.first, hw.second, in.data(), plane, active.data(), active.size(), want.data());
        gap_masked_f32(hw.first, hw.second, in.data(), plane, active.data(), active.size(), got.data());
        expect_planes(got, want, channels, 1, active, 1e-6f);
      }
}

TEST_F(KernelTest, AvgPoolMatchesReference) {
  for (int channels : {1, 3, 13, 17})
    for (const auto& hw : {std::pair{9, 7}, std::pair{2, 2}, std::pair{32, 32}})
      for (const auto& [name, active] : masks(channels)) {
        SCOPED_TRACE("channels " + std::to_string(channels) + " " + name);
        const int h = hw.first, w = hw.second;
        const std::size_t plane = static_cast<std::size_t>(h) * w, out_plane = static_cast<std::size_t>(h / 2) * (w / 2);
        std::vector<float> in(channels * plane, kNaN);
        for (int c : active)
          for (std::size_t q = 0; q < plane; ++q) in[c * plane + q] = uniform();
        std::vector<float> want(channels * out_plane, kNaN), got(channels * out_plane, kNaN);
        avgpool2x2_f32_ref(h, w, in.data(), plane, active.data(), active.size(), want.data(), out_plane);
        avgpool2x2_f32(h, w, in.data(), plane, active.data(), active.size(), got.data(), out_plane);
        expect_planes(got, want, channels, out_plane, active, 1e-6f);
      }
}

TEST_F(KernelTest, LinearMatchesReference) {
  for (int in_total : {1, 3, 13, 17})
    for (int out_dim : {1, 3, 13, 17})
      for (const auto& [name, active] : masks(in_total)) {
        SCOPED_TRACE("in " + std::to_string(in_total) + " out " + std::to_string(out_dim) + " " + name);
        std::vector<float> x(in_total, kNaN);
        for (int c : active) x[c] = uniform();
        const auto weight = randoms(static_cast<std::size_t>(out_dim) * in_total), bias = randoms(out_dim);
        std::vector<float> want(out_dim, kNaN), got(out_dim, kNaN);
        std::vector<int> every(out_dim);
        for (int o = 0; o < out_dim; ++o) every[o] = o;
        linear_masked_f32_ref(x.data(), active.data(), active.size(), weight.data(), in_total, bias.data(), out_dim,
                              want.data());
        linear_masked_f32(x.data(), active.data(), active.size(), weight.data(), in_total, bias.data(), out_dim,
                          got.data());
        expect_planes(got, want, out_dim, 1, every, 1e-5f);
        if (active.empty())
          for (int o = 0; o < out_dim; ++o) EXPECT_EQ(got[o], bias[o]);
      }
}

}  // namespace
}  // namespace mapgate

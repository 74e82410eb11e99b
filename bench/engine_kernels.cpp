// Engine kernels by shape and kept fraction: the masked convolutions at DenseNet-40 (k = 12)
// shapes, each with its executed FLOP/s ("flops", 2 per MAC actually done) and its
// dense-equivalent FLOP/s ("dense_flops", 2 per MAC of the unmasked layer), plus the
// portable, AVX2 and *_ref variants on a few shapes. Kernels come from kernels.h.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "engine_bench.h"
#include "engine/kernels/kernels.h"

namespace mapgate::bench {
namespace {

using ConvFn = void (*)(const MaskedConvArgs&);

// `n` of `total` channels, a random sorted subset (fixed seed), at least one.
std::vector<int> pick(int total, double keep, std::uint32_t seed) {
  const int n = std::max(1, static_cast<int>(std::lround(keep * total)));
  std::vector<int> all(total);
  for (int c = 0; c < total; ++c) all[c] = c;
  std::mt19937 rng(seed);
  std::shuffle(all.begin(), all.end(), rng);
  all.resize(n);
  std::sort(all.begin(), all.end());
  return all;
}

// One masked convolution: in (cin planes, zero-padded for 3x3), weight (cout, cin, k, k),
// out (cout planes of size x size). keep applies to the inputs, and to the outputs if
// keep_outputs (else every output is computed, as in the transitions).
void bm_conv(benchmark::State& state, ConvFn fn, int kernel, int cin, int cout, int size, double keep,
             bool keep_outputs) {
  const int pad = kernel == 3 ? 1 : 0;
  const std::ptrdiff_t in_plane = static_cast<std::ptrdiff_t>(size + 2 * pad) * (size + 2 * pad);
  const std::ptrdiff_t out_plane = static_cast<std::ptrdiff_t>(size) * size;
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> in(cin * in_plane, 0.f), weight(static_cast<std::size_t>(cout) * cin * kernel * kernel),
      out(cout * out_plane, 0.f);
  for (int c = 0; c < cin; ++c)
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x) in[c * in_plane + (y + pad) * (size + 2 * pad) + x + pad] = u(rng);
  for (auto& w : weight) w = u(rng);
  const auto in_active = pick(cin, keep, 1);
  const auto out_active = pick(cout, keep_outputs ? keep : 1.0, 2);
  MaskedConvArgs a;
  a.height = a.width = size;
  a.in = in.data();
  a.in_plane = in_plane;
  a.in_active = in_active.data();
  a.n_in = static_cast<int>(in_active.size());
  a.weight = weight.data();
  a.in_total = cin;
  a.out_active = out_active.data();
  a.n_out = static_cast<int>(out_active.size());
  a.out = out.data();
  a.out_plane = out_plane;
  for (auto _ : state) {
    fn(a);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  const double per_mac = 2.0 * kernel * kernel * out_plane;
  const double executed = per_mac * a.n_in * a.n_out, dense = per_mac * cin * cout;
  const double iters = static_cast<double>(state.iterations());
  state.counters["flops"] = benchmark::Counter(executed * iters, benchmark::Counter::kIsRate);
  state.counters["dense_flops"] = benchmark::Counter(dense * iters, benchmark::Counter::kIsRate);
  state.counters["n_in"] = a.n_in;
  state.counters["n_out"] = a.n_out;
}

std::string keep_name(double keep) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", keep);
  return buf;
}

void add(const std::string& name, ConvFn fn, int kernel, int cin, int cout, int size, double keep, bool keep_outputs) {
  const std::string full = name + "/cin:" + std::to_string(cin) + "/cout:" + std::to_string(cout) +
                           "/hw:" + std::to_string(size) + "/keep:" + keep_name(keep);
  benchmark::RegisterBenchmark(full.c_str(), [=](benchmark::State& s) {
    bm_conv(s, fn, kernel, cin, cout, size, keep, keep_outputs);
  })->Unit(benchmark::kMicrosecond);
}

}  // namespace

void register_kernel_benchmarks() {
  // DenseNet-40, k = 12: dense-layer inputs 16 + 12 i (block 1, 32x32), 160 + 12 i (block 2,
  // 16x16), 304 + 12 i (block 3, 8x8), i < 12; the first, middle and last of each block.
  const int shapes[][2] = {{16, 32}, {88, 32}, {148, 32}, {160, 16}, {232, 16}, {292, 16},
                           {304, 8}, {376, 8}, {436, 8}};
  for (const auto& sh : shapes)
    for (double keep : kKeeps)
      add("conv3x3_masked_f32", kFastKernels.conv3x3, 3, sh[0], 12, sh[1], keep, /*keep_outputs=*/true);
  // Transitions: all outputs from the active inputs, on the pooled plane (the engine pools
  // before the 1x1 convolution: 32x32 -> 16x16 and 16x16 -> 8x8).
  const int trans[][2] = {{160, 16}, {304, 8}};
  for (const auto& sh : trans)
    for (double keep : kKeeps)
      add("conv1x1_masked_f32", kFastKernels.conv1x1, 1, sh[0], sh[0], sh[1], keep, /*keep_outputs=*/false);
  // Every variant that runs on this CPU and the reference (kernels.h's one list), a few
  // shapes; the dispatching kernel (fast[0]) is timed above.
  for (double keep : {1.0, 0.25}) {
    for (const auto& v : kConv3x3Family.fast)
      if (v.fn != kConv3x3Family.fast[0].fn && v.runs_here()) add(v.name, v.fn, 3, 88, 12, 32, keep, true);
    add(kConv3x3Family.ref.name, kConv3x3Family.ref.fn, 3, 88, 12, 32, keep, true);
    add(kConv3x3Family.ref.name, kConv3x3Family.ref.fn, 3, 376, 12, 8, keep, true);
    for (const auto& v : kConv1x1Family.fast)
      if (v.fn != kConv1x1Family.fast[0].fn && v.runs_here()) add(v.name, v.fn, 1, 304, 304, 16, keep, false);
    add(kConv1x1Family.ref.name, kConv1x1Family.ref.fn, 1, 304, 304, 16, keep, false);
  }
}

}  // namespace mapgate::bench

// The engine's Google Benchmark program (target mapgate_engine_bench, no LibTorch): kernels
// by shape and kept fraction (engine_kernels.cpp) and the whole network on random weights
// with random masks (engine_network.cpp). main and the speed-up summary: engine_main.cpp.
#pragma once

namespace mapgate::bench {

// Kept fractions of the benchmarks, as issue 4 lists them.
inline constexpr double kKeeps[] = {1.0, 0.75, 0.5, 0.33, 0.25};

void register_kernel_benchmarks();
void register_network_benchmarks();

}  // namespace mapgate::bench

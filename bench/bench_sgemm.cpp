// The reference rate of docs/perf.md: a 1024 x 1024 x 1024 single-precision matrix
// multiply through LibTorch's CPU BLAS (OpenBLAS with Debian's libopenblas0-pthread) on
// one core. OpenBLAS keeps its own thread pool, which torch::set_num_threads does not
// size: run as `OPENBLAS_NUM_THREADS=1 build/mapgate_bench`. The rate is per CPU second
// of the calling thread, so a busy shared machine does not deflate it.
#include <benchmark/benchmark.h>

#include <torch/torch.h>

namespace {

void BM_Sgemm(benchmark::State& state) {
  const auto n = state.range(0);
  torch::set_num_threads(1);
  torch::manual_seed(0);
  const auto a = torch::randn({n, n}), b = torch::randn({n, n});
  auto c = torch::empty({n, n});
  for (auto _ : state) {
    torch::mm_out(c, a, b);
    benchmark::DoNotOptimize(c.data_ptr<float>());
  }
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::OneK::kIs1000);
}
BENCHMARK(BM_Sgemm)->ArgName("n")->Arg(1024)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();

// main of mapgate_engine_bench: registers the kernel and network benchmarks, runs them with
// the usual Google Benchmark flags, then prints the gated speed-up over engine dense at
// each kept fraction beside macs_ratio (the paper's MAC count) and executed_ratio (the MACs
// the engine executes; transitions pool first), medians of CPU time over repetitions, one run.
//   nice -n 15 build-engine/mapgate_engine_bench --benchmark_filter=engine_network \
//       --benchmark_min_time=0.2 --benchmark_repetitions=3 --benchmark_enable_random_interleaving=true
#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "common/median.h"
#include "engine_bench.h"

namespace {

// Whether a run failed or was skipped: `error_occurred` up to Google Benchmark 1.7 (Debian
// 12), `skipped` from 1.8 on (newer systems, e.g. beside a pip PyTorch).
template <class Run>
auto run_failed(const Run& r, int) -> decltype(static_cast<bool>(r.error_occurred)) {
  return r.error_occurred;
}
template <class Run>
bool run_failed(const Run& r, long) {
  return static_cast<bool>(r.skipped);
}

// The console output, plus every network run's CPU time per iteration (ms), macs_ratio and
// executed_ratio.
class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  struct Runs {
    std::vector<double> ms;
    double macs_ratio = 0, executed_ratio = 0;
  };
  void ReportRuns(const std::vector<Run>& reports) override {
    ConsoleReporter::ReportRuns(reports);
    for (const Run& r : reports) {
      if (r.run_type != Run::RT_Iteration || run_failed(r, 0)) continue;
      const std::string& name = r.run_name.function_name;
      if (name.rfind("engine_network/", 0) != 0) continue;
      Runs& runs = runs_[name];
      runs.ms.push_back(r.GetAdjustedCPUTime());  // unit: ms (Unit(kMillisecond))
      const auto it = r.counters.find("macs_ratio");
      if (it != r.counters.end()) runs.macs_ratio = it->second.value;
      const auto ex = r.counters.find("executed_ratio");
      if (ex != r.counters.end()) runs.executed_ratio = ex->second.value;
    }
  }
  void print_summary() const {
    const auto dense = runs_.find("engine_network/dense");
    if (dense == runs_.end()) return;
    const double d = mapgate::median(dense->second.ms);
    std::printf("\nDenseNet-40 k=12, batch 1, 1 thread, CPU-time medians of this run:\n");
    std::printf("engine dense: %.3f ms/image (%zu runs)\n", d, dense->second.ms.size());
    std::printf("%-34s %10s %9s %11s %13s %15s %13s\n", "gated (random masks)", "ms/image", "speed-up",
                "macs_ratio", "speed-up/ratio", "executed_ratio", "speed-up/exec");
    for (const auto& [name, runs] : runs_) {
      if (name == "engine_network/dense") continue;
      const double g = mapgate::median(runs.ms), up = d / g;
      std::printf("%-34s %10.3f %9.3f %11.3f %13.3f %15.3f %13.3f\n", name.c_str(), g, up, runs.macs_ratio,
                  up / runs.macs_ratio, runs.executed_ratio, up / runs.executed_ratio);
    }
  }

 private:
  std::map<std::string, Runs> runs_;
};

}  // namespace

int main(int argc, char** argv) {
  // The summary needs the console reporter; --benchmark_format=json|csv gets the plain one.
  bool console = true;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--benchmark_format=", 0) == 0 && arg != "--benchmark_format=console") console = false;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  mapgate::bench::register_kernel_benchmarks();
  mapgate::bench::register_network_benchmarks();
  if (console) {
    SummaryReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    reporter.print_summary();
  } else {
    benchmark::RunSpecifiedBenchmarks();
  }
  benchmark::Shutdown();
  return 0;
}

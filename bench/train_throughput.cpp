// Training throughput: mapgate's train() (loader thread, augmentation, progress and
// metrics bookkeeping) against a bare LibTorch loop over the same network, optimizer
// and batch size, or (--gated) mapgate's dense training against its REINFORCE-gated
// training, or (--amp) float32 training against --amp bf16 (both dense, or both gated with
// --gated too); alternating A and B in one process and reporting medians.
// --device cuda runs both arms on a GPU (docs/scale.md). Used for docs/perf.md; see that
// file for the command and the figures.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include <CLI/CLI.hpp>

#include "cli/choice_option.h"
#include "common/allocator.h"
#include "common/median.h"
#include "model/densenet.h"
#include "train/device.h"
#include "train/trainer.h"

namespace {

using namespace mapgate;

Dataset random_cifar_like(std::size_t n, std::uint64_t seed) {
  Dataset d;
  d.name = "synthetic";
  d.channels = 3;
  d.height = d.width = 32;
  d.num_classes = 10;
  for (int c = 0; c < 10; ++c) d.class_names.push_back(std::to_string(c));
  std::mt19937_64 rng(seed);
  d.images.resize(n * d.image_bytes());
  for (auto& p : d.images) p = static_cast<std::uint8_t>(rng());
  d.labels.resize(n);
  for (std::size_t i = 0; i < n; ++i) d.labels[i] = static_cast<std::uint8_t>(i % 10);
  return d;
}

// Images per second of `steps` SGD steps on fixed random batches, nothing else.
double bare_libtorch(const DenseNetConfig& c, int batch, int steps, torch::Device device) {
  torch::manual_seed(0);
  DenseNet model(c);
  model->to(device);
  model->train();
  torch::optim::SGD optimizer(model->parameters(),
                              torch::optim::SGDOptions(0.1).momentum(0.9).nesterov(true).weight_decay(1e-4));
  auto images = torch::randn({batch, 3, 32, 32}).to(device);
  auto labels = torch::randint(0, 10, {batch}, torch::kInt64).to(device);
  const auto start = std::chrono::steady_clock::now();
  for (int s = 0; s < steps; ++s) {
    optimizer.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(model->forward(images), labels);
    loss.backward();
    optimizer.step();
    loss.item<float>();  // one host sync per step, like any loop that logs its loss
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return batch * steps / seconds;
}

// Images per second of mapgate's training loop (train_seconds in metrics.jsonl);
// gates kReinforce: REINFORCE-gated training at lambda 4 with the default method flags
// and the given REINFORCE baseline.
double mapgate_train(const DenseNetConfig& c, const DatasetSplits& data, int batch, int threads,
                     const std::string& dir, const std::string& device, Gates gates = Gates::kOff,
                     Amp amp = Amp::kOff, Baseline baseline = Baseline::kAuto) {
  std::filesystem::remove_all(dir);
  TrainConfig t;
  t.model = c;
  t.gates = gates;
  t.amp = amp;
  t.baseline = baseline;
  t.penalty = 4;
  t.out_dir = dir;
  t.epochs = 1;
  t.batch = batch;
  t.threads = threads;
  t.device = device;
  train(t, data, nullptr);
  std::ifstream metrics(std::filesystem::path(dir) / kMetricsFile);
  std::string line;
  std::getline(metrics, line);
  const auto j = nlohmann::json::parse(line);
  return j.at("images_per_s").get<double>();
}

}  // namespace

int main(int argc, char** argv) {
  keep_freed_memory_for_reuse();  // as the mapgate binary does
  CLI::App app{"Training throughput: mapgate train() vs a bare LibTorch loop, same network"};
  app.option_defaults()->always_capture_default();
  DenseNetConfig c;
  int batch = 64, threads = 2, steps = 10, repeats = 5;
  std::string dir = "/tmp/mapgate-train-bench";
  std::string device_name = "cpu";
  app.add_option("--depth", c.depth, "DenseNet depth");
  app.add_option("--growth", c.growth, "growth rate");
  app.add_option("--batch", batch, "batch size");
  app.add_option("--threads", threads, "LibTorch threads");
  app.add_option("--steps", steps, "training steps per measurement");
  app.add_option("--repeats", repeats, "measurements of each (alternating)");
  app.add_option("--dir", dir, "scratch run directory");
  app.add_option("--device", device_name, "where LibTorch trains: cpu, cuda or cuda:N (both arms)");
  bool gated = false;
  app.add_flag("--gated", gated,
               "compare mapgate's dense training (A) with its REINFORCE-gated training, lambda 4 (B), "
               "instead of a bare LibTorch loop (A) with mapgate's dense training (B)");
  bool amp = false;
  app.add_flag("--amp", amp,
               "compare float32 training (A) with --amp bf16 (B): mapgate dense, or mapgate gated with --gated");
  Baseline baseline = Baseline::kAuto;
  add_choice_option(&app, baseline, "REINFORCE baseline of the gated arm (--gated): as mapgate train --baseline");
  CLI11_PARSE(app, argc, argv);
  if (baseline != Baseline::kAuto && !gated) {
    std::fprintf(stderr, "mapgate_train_bench: --baseline: only with --gated\n");
    return 2;
  }

  torch::Device device = torch::kCPU;
  try {
    device = open_device("--device", device_name);
  } catch (const Error& e) {
    std::fprintf(stderr, "mapgate_train_bench: %s\n", e.what());
    return 1;
  }
  torch::set_num_threads(threads);
  DatasetSplits data;
  data.train = random_cifar_like(static_cast<std::size_t>(batch) * steps, 1);
  data.test = random_cifar_like(batch, 2);
  bare_libtorch(c, batch, 2, device);  // warm-up: allocator, thread pool, kernels
  const char* name_a = amp ? "float32" : gated ? "mapgate dense" : "bare LibTorch";
  const char* name_b = amp ? "bf16" : gated ? "mapgate gated" : "mapgate train";
  const Gates gates_b = gated ? Gates::kReinforce : Gates::kOff;
  const Gates gates_a = amp ? gates_b : Gates::kOff;  // --amp: the same training, float32
  std::vector<double> a, b;
  for (int r = 0; r < repeats; ++r) {
    a.push_back(amp || gated ? mapgate_train(c, data, batch, threads, dir, device.str(), gates_a)
                             : bare_libtorch(c, batch, steps, device));
    b.push_back(mapgate_train(c, data, batch, threads, dir, device.str(), gates_b, amp ? Amp::kBf16 : Amp::kOff,
                              baseline));
    std::printf("repeat %d: %s %.1f img/s, %s %.1f img/s\n", r + 1, name_a, a.back(), name_b, b.back());
    std::fflush(stdout);
  }
  std::filesystem::remove_all(dir);
  const double ma = median(a), mb = median(b);
  std::printf("DenseNet-%d k=%d batch %d, %d thread(s), %s, %d steps x %d repeats%s%s\n", c.depth, c.growth,
              batch, threads, device.str().c_str(), steps, repeats, gated ? ", gated baseline " : "",
              gated ? choice_name(baseline) : "");
  std::printf("median: %s %.1f img/s, %s %.1f img/s, B/A %.3f\n", name_a, ma, name_b, mb, mb / ma);
  std::printf("implied CIFAR-10 epoch (50000 images): %s %.1f min, %s %.1f min\n", name_a, 50000 / ma / 60,
              name_b, 50000 / mb / 60);
  return 0;
}

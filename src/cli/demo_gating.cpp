// `mapgate demo`: the dense reference and the gated model shipped in models/, on the
// test split through the engine: accuracy, MACs and their spread, what input dependence
// is worth (the mask-shuffle ablation), measured images/s, the cheapest and dearest images.
#include "cli/demo_gating.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <numeric>

#include "cli/commands.h"
#include "cli/eval_json.h"
#include "cli/network_inputs.h"
#include "common/error.h"
#include "common/median.h"
#include "data/data_dir.h"
#include "engine/engine.h"
#include "train/evaluate.h"
#include "train/export.h"
#include "train/progress.h"
#include "train/trained_model.h"

namespace mapgate {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

TrainedModel load_demo_run(const std::string& flag, const std::string& path, bool want_gates) {
  if (!std::filesystem::exists(path))
    throw UsageError(flag + " " + quoted(path) + ": no such run; run the demo from the mapgate source "
                     "directory (models/ ships there) or pass " + flag + " RUN");
  TrainedModel m = load_trained_model(path);
  if (m.config.gated != want_gates)
    throw UsageError(flag + " " + quoted(path) + (want_gates ? ": has no gates" : ": is gated") +
                     "; expected " + (want_gates ? "a gated run (--gates reinforce)" : "a dense run"));
  check_checkpoint_dataset(m.path, m.dataset);
  return m;
}

namespace {

// Images/s of dense and gated engines on the same images, alternating, median of 3 passes.
std::pair<double, double> engine_rates(TrainedModel& dense, TrainedModel& gated, const Dataset& test,
                                       std::size_t count, int threads) {
  EngineOptions dense_mode, gated_mode;
  dense_mode.mode = EngineMode::kDense;
  gated_mode.mode = EngineMode::kGated;
  Engine engines[2] = {Engine(export_weights(dense), dense_mode), Engine(export_weights(gated), gated_mode)};
  const std::vector<float> images[2] = {network_inputs(test, 0, count, dense.normalization),
                                        network_inputs(test, 0, count, gated.normalization)};
  const int n = static_cast<int>(count), batch = 64, classes = dense.config.num_classes;
  const std::size_t floats = images[0].size() / count;
  std::vector<float> logits(static_cast<std::size_t>(batch) * classes);
  std::vector<double> rates[2];
  for (int repeat = 0; repeat < 4; ++repeat)  // the first pass warms up and is not counted
    for (int e = 0; e < 2; ++e) {
      const auto t0 = Clock::now();
      for (int at = 0; at < n; at += batch)
        engines[e].forward_batch(images[e].data() + at * floats, std::min(batch, n - at), logits.data(),
                                 nullptr, threads);
      if (repeat > 0) rates[e].push_back(n / seconds_since(t0));
    }
  return {median(rates[0]), median(rates[1])};
}

void print_extremes(const EvalResult& r, const Dataset& test) {
  std::vector<std::size_t> order(r.macs.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return r.macs[a] < r.macs[b]; });
  const std::size_t shown = std::min<std::size_t>(5, order.size());
  auto list = [&](const char* title, auto first) {
    std::printf("%s", title);
    for (std::size_t i = 0; i < shown; ++i) {
      const std::size_t at = *(first + i);
      const int label = r.labels[at], predicted = r.predictions[at];
      std::printf(" #%zu %s%s%s %.1fM;", at, test.class_names[label].c_str(), predicted == label ? "" : " taken for ",
                  predicted == label ? "" : test.class_names[predicted].c_str(), r.macs[at] / 1e6);
    }
    std::printf("\n");
  };
  list("cheapest test images (index, class, MACs):", order.begin());
  list("dearest test images:", order.rbegin());
  int cheap = 0, dear = 0;
  for (int c = 0; c < test.num_classes; ++c) {
    if (r.class_macs[c] < r.class_macs[cheap]) cheap = c;
    if (r.class_macs[c] > r.class_macs[dear]) dear = c;
  }
  std::printf("by class: %s images use the fewest MACs on average (%.1fM), %s the most (%.1fM)\n",
              test.class_names[cheap].c_str(), r.class_macs[cheap] / 1e6, test.class_names[dear].c_str(),
              r.class_macs[dear] / 1e6);
}

std::string shell_quoted(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

void write_json(const std::filesystem::path& path, const nlohmann::json& j) {
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  if (!out.good()) throw Error(quoted(path.string()) + ": cannot write");
}

// A python3 with matplotlib, or "" (the pictures are then left to the user).
std::string plotting_python() {
  for (const char* python : {"python3", "/usr/bin/python3"})
    if (std::system((std::string(python) + " -c 'import matplotlib' >/dev/null 2>&1").c_str()) == 0) return python;
  return "";
}

// The gallery and the trade-off plot from the JSON files in `out`, through tools/ (their
// messages go to out/pictures.log); prints their paths, or the commands when tools/ or
// matplotlib is missing or a tool fails.
void make_pictures(const std::filesystem::path& out, const std::string& data_dir) {
  auto in_out = [&](const char* name) { return shell_quoted((out / name).string()); };
  const struct {
    const char* picture;
    std::string command;
  } plots[2] = {{"gallery.png", "tools/plot_gallery.py " + in_out("gated-eval.json") + " --data " +
                                    shell_quoted(data_dir) + " -o " + in_out("gallery.png")},
                {"tradeoff.png", "tools/plot_tradeoff.py " + in_out("dense-eval.json") + " " +
                                     in_out("gated-curve.json") + " -o " + in_out("tradeoff.png") +
                                     " --title 'dense and gated DenseNet-22 on the CIFAR-10 test set, tau 0.3-0.7'"}};
  const std::string python = std::filesystem::exists("tools/plot_gallery.py") ? plotting_python() : "";
  const std::string log = " >>" + in_out("pictures.log") + " 2>&1";
  for (const auto& plot : plots) {
    if (python.empty() || std::system((python + " " + plot.command + log).c_str()) != 0) {
      std::printf("picture not made (%s); from the mapgate source directory, with python3-matplotlib: python3 %s\n",
                  python.empty() ? "no tools/ here or no matplotlib" : "see pictures.log", plot.command.c_str());
      continue;
    }
    std::printf("picture: %s\n", (out / plot.picture).string().c_str());
  }
}

}  // namespace

void run_gating_demo(const GatingDemoArgs& args, TrainedModel& dense, TrainedModel& gated) {
  torch::set_num_threads(args.threads);
  const auto start = Clock::now();
  std::printf("== mapgate demo: feature maps switched off per image (%d thread(s))\n", args.threads);
  const std::string dir = resolve_data_dir(args.data, gated.dataset, [](const std::string& l) { std::cerr << l << "\n"; });
  const Dataset test = load_test_split(gated.dataset, dir).head(args.test_limit);
  check_network_takes(test, dir, dense.config, "--dense " + quoted(dense.path));
  check_network_takes(test, dir, gated.config, "--gated " + quoted(gated.path));
  std::printf("data: %zu %s test images from %s\n", test.size(), gated.dataset.c_str(), dir.c_str());

  const EvalResult d = evaluate(dense.model, test, dense.normalization);
  const EvalResult g = evaluate(gated.model, test, gated.normalization);
  const double shuffled = mask_shuffle_accuracy(gated.model, test, gated.normalization, g);
  const auto dense_macs = static_cast<double>(g.macs_dense);
  std::printf("dense  %-28s accuracy %.4f  %6.1f M MACs per image\n", dense.path.c_str(), d.accuracy(), dense_macs / 1e6);
  std::printf("gated  %-28s accuracy %.4f  %6.1f M MACs on average (p5 %.1f M, p95 %.1f M): x%.2f fewer\n",
              gated.path.c_str(), g.accuracy(), g.macs_mean() / 1e6, g.dependence.macs_p5 / 1e6,
              g.dependence.macs_p95 / 1e6, dense_macs / g.macs_mean());
  std::printf("input dependence: %zu distinct masks on %zu images, %.0f%% of the maps on for some images "
              "and off for others; with another image's masks the gated model scores %.4f (%+.1f points)\n",
              g.dependence.distinct_masks, g.examples, 100 * g.dependence.conditional_fraction, shuffled,
              100 * (shuffled - g.accuracy()));
  const std::size_t timed = std::min(args.timed_images, test.size());
  const auto [dense_rate, gated_rate] = engine_rates(dense, gated, test, timed, args.threads);
  std::printf("measured on the engine (%zu images, batch 64, median of 3): dense %.0f images/s, gated %.0f "
              "images/s: x%.2f faster for x%.2f fewer MACs\n",
              timed, dense_rate, gated_rate, gated_rate / dense_rate, dense_macs / g.macs_mean());
  print_extremes(g, test);

  const std::filesystem::path out = args.out;
  std::filesystem::create_directories(out);
  write_json(out / "dense-eval.json", eval_json(dense, test, d, 0, false));
  write_json(out / "gated-eval.json", eval_json(gated, test, g, shuffled, true));
  write_json(out / "gated-curve.json",
             tau_curve_json(gated, test, {0.3, 0.4, 0.5, 0.6, 0.7}, 64, EvalBackend::kAuto));
  std::printf("evaluations: %s (dense-eval.json, gated-eval.json, gated-curve.json: accuracy/MACs at tau 0.3-0.7)\n",
              out.string().c_str());
  make_pictures(out, dir);
  std::printf("\nthe whole demo took %s. Next:\n", format_duration(seconds_since(start)).c_str());
  std::printf("  mapgate eval --model %s --thresholds 0.3,0.4,0.5,0.6,0.7   # accuracy/MACs over tau\n",
              args.gated.c_str());
  std::printf("  mapgate bench --model %s --data %s           # engine vs LibTorch, batch 1 and 64\n",
              args.gated.c_str(), dir.c_str());
  std::printf("  mapgate demo --train   # fine-tune gates onto the dense model (minutes), then show them\n");
  std::printf("  docs/results.md: how the gates compare with static pruning and thin networks\n");
}

}  // namespace mapgate

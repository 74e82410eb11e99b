// Can a gate see how hard an image is? (issue 10: docs/results.md, "Can the gates see
// difficulty?"). A gate decides from s = GAP of its layer's input. This program asks what
// a linear function of that s (the gate's own form) or one with a hidden layer can know,
// layer by layer, with the gated model's own masks applied before it (thresholded, as at
// inference):
//   - "hard": is the image among the hardest fifth by a reference model's loss (the
//     difficulty of docs/pictures.md, "Accuracy and MACs by image difficulty")? Logistic
//     regression, and the same with 32 hidden ReLU units; held-out AUC.
//   - its label: softmax regression, held-out accuracy (how much class the input carries).
// Beside each layer, the AUC of what the gate actually does (the number of maps it keeps,
// as a score for "hard"), and at the end the AUC of the gated model's own output (one minus
// its top softmax probability): how visible difficulty is once the whole network has run.
// Probes fit on the first half of the test images, standardised by that half's statistics,
// and are scored on the second half.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "data/dataset.h"
#include "held_out_probe.h"
#include "probe_program.h"
#include "train/evaluate.h"
#include "train/trained_model.h"

namespace {

using namespace mapgate;

// Area under the ROC curve of `score` for the positives in `positive` (Mann-Whitney, tied
// scores share their mean rank). 0.5: the score knows nothing.
double auc(const torch::Tensor& score, const torch::Tensor& positive) {
  const auto s = score.to(torch::kDouble).contiguous();
  const auto y = positive.to(torch::kBool).contiguous();
  const auto n = s.size(0);
  std::vector<std::int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  const double* v = s.data_ptr<double>();
  std::sort(order.begin(), order.end(), [v](auto a, auto b) { return v[a] < v[b]; });
  double rank_sum = 0;
  std::int64_t positives = 0;
  const bool* is_pos = y.data_ptr<bool>();
  for (std::int64_t i = 0; i < n;) {
    std::int64_t j = i;
    while (j < n && v[order[j]] == v[order[i]]) ++j;
    const double mean_rank = (i + 1 + j) / 2.0;  // ranks i+1 .. j
    for (auto t = i; t < j; ++t)
      if (is_pos[order[t]]) rank_sum += mean_rank, ++positives;
    i = j;
  }
  const double negatives = static_cast<double>(n - positives);
  return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives);
}

struct Passes {
  std::vector<torch::Tensor> block_means;  // per block: GAP of its concatenated output (N, C)
  std::vector<torch::Tensor> kept;         // per gated layer: maps kept (N)
  torch::Tensor reference_loss, labels, confidence;  // (N) each; confidence: the gated model's top p
};

Passes run_models(TrainedModel& gated, TrainedModel& reference, const Dataset& test, int batch) {
  // The reference's per-image loss as `mapgate eval --per-example` writes it: the
  // difficulty tools/plot_difficulty.py bins by.
  const EvalResult ref = evaluate(reference.model, test, reference.normalization, batch);
  torch::NoGradGuard no_grad;
  gated.model->eval();
  std::vector<std::vector<torch::Tensor>> means(3), kept(gated.config.dense_layers());
  std::vector<torch::Tensor> confidence;
  for (std::size_t at = 0; at < test.size(); at += batch) {
    const auto x = probe_images(test, at, std::min<std::size_t>(batch, test.size() - at), gated.normalization);
    GateControl control;
    control.keep_features = true;
    const auto out = gated.model->forward_gated(x, control);
    for (int b = 0; b < 3; ++b) means[b].push_back(out.features[b].mean({2, 3}));
    for (std::size_t l = 0; l < kept.size(); ++l) kept[l].push_back(out.masks[l].sum(1));
    confidence.push_back(std::get<0>(torch::softmax(out.logits, 1).max(1)));
  }
  Passes p;
  for (auto& m : means) p.block_means.push_back(torch::cat(m));
  for (auto& k : kept) p.kept.push_back(torch::cat(k));
  p.reference_loss = torch::tensor(ref.losses);
  p.labels = torch::tensor(std::vector<std::int64_t>(ref.labels.begin(), ref.labels.end()));
  p.confidence = torch::cat(confidence);
  return p;
}

nlohmann::json probe_layers(const TrainedModel& gated, const Passes& p) {
  const auto& c = gated.config;
  const auto n = p.labels.size(0), half = n / 2;
  const auto cut = std::get<0>(p.reference_loss.kthvalue(static_cast<std::int64_t>(0.8 * n)));
  const auto hard = p.reference_loss.gt(cut);
  const auto hard_test = hard.narrow(0, half, n - half);
  const auto labels_test = p.labels.narrow(0, half, n - half);
  nlohmann::json rows = nlohmann::json::array();
  std::printf("| layer | block | gate inputs | linear probe AUC: hard | 32-unit probe AUC: hard | linear probe accuracy: label | gate's kept maps AUC: hard |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (int l = 0; l < c.dense_layers(); ++l) {
    const int b = l / c.layers_per_block(), i = l % c.layers_per_block();
    const auto& s = p.block_means[b];
    const auto inputs = s.size(1) - (c.layers_per_block() - i) * c.growth;  // channels before layer l
    const auto x = s.narrow(1, 0, inputs);
    const double hard_auc = auc(probe_held_out(x, hard, 1).squeeze(1), hard_test);
    const double hidden_auc = auc(probe_held_out(x, hard, 1, 32).squeeze(1), hard_test);
    const double label_acc =
        probe_held_out(x, p.labels, c.num_classes).argmax(1).eq(labels_test).to(torch::kDouble).mean().item<double>();
    const double kept_auc = auc(p.kept[l].narrow(0, half, n - half), hard_test);
    std::printf("| %d | %d | %lld | %.3f | %.3f | %.3f | %.3f |\n", l + 1, b + 1, static_cast<long long>(inputs),
                hard_auc, hidden_auc, label_acc, kept_auc);
    rows.push_back({{"layer", l + 1}, {"block", b + 1}, {"gate_inputs", inputs}, {"probe_auc_hard", hard_auc},
                    {"hidden32_probe_auc_hard", hidden_auc},
                    {"probe_accuracy_label", label_acc}, {"kept_maps_auc_hard", kept_auc}});
  }
  const double output_auc = auc(1 - p.confidence.narrow(0, half, n - half), hard_test);
  std::printf("\nthe gated model's own output (1 - top softmax p) as a score for hard: AUC %.3f\n", output_auc);
  return {{"hard_quantile", 0.8}, {"held_out_images", n - half}, {"layers", rows}, {"output_auc_hard", output_auc}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"What a function of each gate's input could know about an image's difficulty and label"};
  ProbeFlags flags;
  std::string reference;
  add_probe_flags(app, flags, "gated run or checkpoint");
  app.add_option("--reference", reference, "dense run whose per-image loss ranks difficulty")->required();
  CLI11_PARSE(app, argc, argv);
  return run_probe("mapgate_gate_input_probe", [&] {
    TrainedModel gated = load_trained_model(flags.model), dense = load_trained_model(reference);
    if (!gated.config.gated) throw UsageError("--model " + flags.model + ": has no gates");
    if (dense.dataset != gated.dataset)
      throw UsageError("--reference " + reference + ": trained on " + dense.dataset + ", --model on " + gated.dataset);
    const Dataset test = probe_test_split(flags, gated.dataset);
    write_probe_json(flags, probe_layers(gated, run_models(gated, dense, test, /*batch=*/64)));
  });
}

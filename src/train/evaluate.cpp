// Evaluation loop: no augmentation, no shuffling, no gradients.
#include "train/evaluate.h"

#include <algorithm>
#include <cmath>

#include "model/gated_macs.h"

namespace mapgate {
namespace {

Loader plain_loader(const Dataset& data, const Normalization& norm, int batch_size) {
  LoaderOptions options;
  options.batch_size = batch_size;
  options.shuffle = false;
  options.augment = false;
  return Loader(data, norm, options);
}

// Appends one row per example: the 0/1 masks of every gate, layer after layer.
void append_masks(const std::vector<torch::Tensor>& masks, MaskMatrix& out) {
  const auto all = torch::cat(masks, 1).to(torch::kUInt8).contiguous();  // (N, gated maps)
  const auto* data = all.data_ptr<std::uint8_t>();
  const auto width = all.size(1);
  for (std::int64_t i = 0; i < all.size(0); ++i)
    out.append(std::vector<std::uint8_t>(data + i * width, data + (i + 1) * width));
}

// The masks of rows[0..n) of `m`, split into per-gate (n, k) float tensors.
std::vector<torch::Tensor> masks_of_rows(const MaskMatrix& m, const std::vector<std::size_t>& rows, int gates) {
  const auto n = static_cast<std::int64_t>(rows.size());
  auto all = torch::empty({n, static_cast<std::int64_t>(m.maps)}, torch::kUInt8);
  auto* data = all.data_ptr<std::uint8_t>();
  for (std::int64_t i = 0; i < n; ++i)
    std::copy_n(m.bits.begin() + rows[i] * m.maps, m.maps, data + i * m.maps);
  return all.to(torch::kFloat).chunk(gates, 1);
}

}  // namespace

double EvalResult::macs_mean() const {
  double sum = 0;
  for (auto m : macs) sum += static_cast<double>(m);
  return macs.empty() ? 0 : sum / macs.size();
}

double EvalResult::macs_percentile(double q) const {
  if (macs.empty()) return 0;
  std::vector<std::int64_t> sorted = macs;
  std::sort(sorted.begin(), sorted.end());
  const auto rank = static_cast<std::size_t>(std::ceil(q * sorted.size()));
  return static_cast<double>(sorted[std::min(sorted.size() - 1, rank > 0 ? rank - 1 : 0)]);
}

double EvalResult::active_fraction() const {
  double sum = 0;
  for (double a : layer_active) sum += a;
  return layer_active.empty() ? 0 : sum / layer_active.size();
}

EvalResult evaluate(DenseNet& model, const Dataset& data, const Normalization& norm,
                    int batch_size) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  LoaderOptions options;
  options.batch_size = batch_size;
  options.shuffle = false;
  options.augment = false;
  Loader loader(data, norm, options);
  loader.start_epoch(0);
  const bool gated = model->config().gated;
  std::unique_ptr<GatedCost> cost;
  // A model that samples its masks at inference (--gates random) is measured on one
  // fixed draw, so that eval of its checkpoint reproduces metrics.jsonl.
  if (model->config().sampled_inference) torch::manual_seed(kSampledInferenceSeed);

  EvalResult r;
  r.class_total.assign(data.num_classes, 0);
  r.class_correct.assign(data.num_classes, 0);
  double loss_sum = 0;
  if (gated) {
    cost = std::make_unique<GatedCost>(model->config());
    r.gated = true;
    r.macs_dense = cost->dense_macs();
    r.layer_active.assign(cost->layers(), 0);
    r.class_macs.assign(data.num_classes, 0);
  }
  Batch batch;
  while (loader.next(batch)) {
    auto images = torch::from_blob(batch.images.data(),
                                   {batch.size, data.channels, data.height, data.width});
    auto labels = torch::from_blob(batch.labels.data(), {batch.size}, torch::kInt64);
    torch::Tensor logits;
    if (gated) {
      const GatedOutput out = model->forward_gated(images, GateControl{});
      logits = out.logits;
      for (std::size_t l = 0; l < out.masks.size(); ++l)
        r.layer_active[l] += out.masks[l].mean(1).sum().item<double>();
      append_masks(out.masks, r.masks);
      const auto macs = example_macs(*cost, out.masks);
      for (int i = 0; i < batch.size; ++i) r.class_macs[batch.labels[i]] += static_cast<double>(macs[i]);
      r.macs.insert(r.macs.end(), macs.begin(), macs.end());
    } else {
      logits = model->forward(images);
    }
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, labels,
                    torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    auto predicted = logits.argmax(1);
    auto hits = predicted.eq(labels);
    const auto* hit = hits.data_ptr<bool>();
    for (int i = 0; i < batch.size; ++i) {
      const auto label = batch.labels[i];
      ++r.class_total[label];
      if (hit[i]) {
        ++r.class_correct[label];
        ++r.correct;
      }
    }
    r.examples += batch.size;
    r.labels.insert(r.labels.end(), batch.labels.begin(), batch.labels.end());
  }
  r.loss = r.examples ? loss_sum / r.examples : 0;
  if (gated && r.examples) {
    for (auto& a : r.layer_active) a /= r.examples;
    for (int c = 0; c < data.num_classes; ++c)
      r.class_macs[c] = r.class_total[c] ? r.class_macs[c] / r.class_total[c] : 0;
    r.dependence = measure_input_dependence(r.masks, r.labels, data.num_classes, r.macs);
  }
  if (was_training) model->train();
  return r;
}

double mask_shuffle_accuracy(DenseNet& model, const Dataset& data, const Normalization& norm,
                             const EvalResult& gated, int batch_size, std::uint64_t seed) {
  if (gated.masks.examples == 0) return 0;
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  const auto perm = shuffle_permutation(gated.masks.examples, seed);
  Loader loader = plain_loader(data, norm, batch_size);
  loader.start_epoch(0);
  std::size_t first = 0, correct = 0;
  Batch batch;
  while (loader.next(batch) && first < perm.size()) {
    const std::vector<std::size_t> rows(perm.begin() + first, perm.begin() + first + batch.size);
    GateControl given;
    given.mode = GateMode::kGiven;
    given.masks = masks_of_rows(gated.masks, rows, model->config().dense_layers());
    auto images = torch::from_blob(batch.images.data(), {batch.size, data.channels, data.height, data.width});
    auto labels = torch::from_blob(batch.labels.data(), {batch.size}, torch::kInt64);
    correct += model->forward_gated(images, given).logits.argmax(1).eq(labels).sum().item<std::int64_t>();
    first += batch.size;
  }
  if (was_training) model->train();
  return double(correct) / first;
}

nlohmann::json input_dependence_json(const EvalResult& r, double shuffle_accuracy) {
  nlohmann::json j = to_json(r.dependence);
  j["shuffle_accuracy"] = shuffle_accuracy;
  j["shuffle_drop"] = r.accuracy() - shuffle_accuracy;
  // Per gated map (layer after layer): the fraction of examples that kept it.
  std::vector<double> on_rate(r.masks.maps, 0.0);
  for (std::size_t i = 0; i < r.masks.examples; ++i)
    for (std::size_t m = 0; m < r.masks.maps; ++m) on_rate[m] += r.masks.bits[i * r.masks.maps + m];
  for (double& v : on_rate) v /= std::max<std::size_t>(r.masks.examples, 1);
  j["map_on_rate"] = on_rate;
  return j;
}

namespace {

// Resets every BN layer of type BN to LibTorch's cumulative average (momentum None);
// returns the momenta to restore after the recalibration batches.
template <class BN>
std::vector<std::pair<BN*, c10::optional<double>>> start_cumulative(DenseNet& model) {
  std::vector<std::pair<BN*, c10::optional<double>>> norms;
  for (const auto& m : model->modules(/*include_self=*/false))
    if (auto* bn = dynamic_cast<BN*>(m.get())) {
      norms.emplace_back(bn, bn->options.momentum());
      bn->reset_running_stats();
      bn->options.momentum(c10::nullopt);
    }
  return norms;
}

// Ungated model: LibTorch's cumulative average over the batches.
void recalibrate_dense(DenseNet& model, Loader& loader, const Dataset& data, int batches) {
  const auto norms = start_cumulative<torch::nn::BatchNorm2dImpl>(model);
  Batch batch;
  for (int b = 0; b < batches && loader.next(batch); ++b)
    model->forward(torch::from_blob(batch.images.data(), {batch.size, data.channels, data.height, data.width}));
  for (auto& [bn, momentum] : norms) bn->options.momentum(momentum);
}

// Gated model: every BN2d pools the values of the examples that keep each channel
// (masked_batch_norm's sums), the gates' input norms average their batch statistics.
void recalibrate_gated(DenseNet& model, Loader& loader, const Dataset& data, int batches) {
  const auto gate_norms = start_cumulative<torch::nn::BatchNorm1dImpl>(model);
  BatchStatAccumulator sums;
  const MaskedNorm saved = model->masked_norm();
  MaskedNorm accumulate = saved;
  accumulate.sums = &sums;
  model->set_masked_norm(accumulate);
  Batch batch;
  for (int b = 0; b < batches && loader.next(batch); ++b)
    model->forward_gated(torch::from_blob(batch.images.data(), {batch.size, data.channels, data.height, data.width}),
                         GateControl{});
  model->set_masked_norm(saved);
  for (auto& [bn, momentum] : gate_norms) bn->options.momentum(momentum);
  for (const auto& m : model->modules(/*include_self=*/false))
    if (auto* bn = dynamic_cast<torch::nn::BatchNorm2dImpl*>(m.get())) {
      const auto it = sums.find(bn);
      if (it != sums.end()) it->second.write_to(*bn);
    }
}

}  // namespace

void recalibrate_batch_norm(DenseNet& model, const Dataset& data, const Normalization& norm,
                            int batches, int batch_size) {
  if (batches <= 0 || data.size() == 0) return;
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->train();
  Loader loader = plain_loader(data, norm, batch_size);
  loader.start_epoch(0);
  if (model->config().gated)
    recalibrate_gated(model, loader, data, batches);
  else
    recalibrate_dense(model, loader, data, batches);
  if (!was_training) model->eval();
}

}  // namespace mapgate

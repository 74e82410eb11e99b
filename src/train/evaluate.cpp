// Evaluation loop: no augmentation, no shuffling, no gradients.
#include "train/evaluate.h"

#include <algorithm>
#include <cmath>

#include "engine/engine.h"
#include "model/gated_macs.h"
#include "train/device.h"
#include "train/export.h"

namespace mapgate {
namespace {

// In order, unaugmented; batches pinned on the loader thread when `model` is on a GPU.
Loader plain_loader(const Dataset& data, const Normalization& norm, int batch_size, const DenseNet& model) {
  LoaderOptions options;
  options.batch_size = batch_size;
  options.shuffle = false;
  options.augment = false;
  options.stage = make_batch_stage(data, device_of(*model));
  return Loader(data, norm, options);
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

double EvalResult::loss() const {
  double sum = 0;
  for (double l : losses) sum += l;
  return losses.empty() ? 0 : sum / losses.size();
}

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

namespace {

EvalResult empty_result(const DenseNet& model, int num_classes) {
  EvalResult r;
  r.class_total.assign(num_classes, 0);
  r.class_correct.assign(num_classes, 0);
  if (model->config().gated) {
    const GatedCost cost(model->config());
    r.gated = true;
    r.macs_dense = cost.dense_macs();
    r.layer_active.assign(cost.layers(), 0);
    r.class_macs.assign(num_classes, 0);
    r.masks.maps = static_cast<std::size_t>(cost.layers()) * model->config().growth;
  }
  return r;
}

// Index of the first largest of n values (torch's argmax on the CPU).
int first_argmax(const float* v, int n) {
  return static_cast<int>(std::max_element(v, v + n) - v);
}

// Adds one batch: logits (size, classes) row-major; for a gated model also its masks
// (size, gated maps) 0/1, layer after layer, and the MACs of each example. Loss and
// hits are computed here, in double, the same way for both backends.
void add_batch(EvalResult& r, const Batch& batch, const float* logits, const std::uint8_t* masks,
               const std::int64_t* macs) {
  const int classes = static_cast<int>(r.class_total.size());
  for (int i = 0; i < batch.size; ++i) {
    const float* row = logits + static_cast<std::size_t>(i) * classes;
    const auto label = static_cast<int>(batch.labels[i]);
    const double top = *std::max_element(row, row + classes);
    double sum = 0;
    for (int c = 0; c < classes; ++c) sum += std::exp(row[c] - top);
    r.losses.push_back(top + std::log(sum) - row[label]);
    r.confidences.push_back(1.0 / sum);  // softmax of the top class: exp(top - top) / sum
    ++r.class_total[label];
    const int predicted = first_argmax(row, classes);
    if (predicted == label) {
      ++r.class_correct[label];
      ++r.correct;
    }
    r.labels.push_back(label);
    r.predictions.push_back(predicted);
  }
  if (r.gated) {
    const std::size_t width = r.masks.maps, layers = r.layer_active.size(), k = width / layers;
    for (int i = 0; i < batch.size; ++i) {
      const std::uint8_t* row = masks + static_cast<std::size_t>(i) * width;
      r.masks.append(std::vector<std::uint8_t>(row, row + width));
      for (std::size_t l = 0; l < layers; ++l) {
        int kept = 0;
        for (std::size_t j = 0; j < k; ++j) kept += row[l * k + j];
        r.layer_active[l] += static_cast<double>(kept) / k;
      }
      r.macs.push_back(macs[i]);
      r.class_macs[batch.labels[i]] += static_cast<double>(macs[i]);
    }
  }
  r.examples += batch.size;
}

void finish(EvalResult& r, int num_classes) {
  if (r.examples == 0 || !r.gated) return;
  for (auto& a : r.layer_active) a /= r.examples;
  for (int c = 0; c < num_classes; ++c)
    r.class_macs[c] = r.class_total[c] ? r.class_macs[c] / r.class_total[c] : 0;
  r.dependence = measure_input_dependence(r.masks, r.labels, num_classes, r.macs);
}

void evaluate_on_libtorch(DenseNet& model, Loader& loader, const Dataset& data, EvalResult& r) {
  std::unique_ptr<GatedCost> cost;
  if (r.gated) cost = std::make_unique<GatedCost>(model->config());
  // A model that samples its masks at inference (--gates random) is measured on one
  // fixed draw, so that eval of its checkpoint reproduces metrics.jsonl.
  if (model->config().sampled_inference) torch::manual_seed(kSampledInferenceSeed);
  const torch::Device device = device_of(*model);
  Batch batch;
  while (loader.next(batch)) {
    const auto images = images_on(batch, data, device);
    if (!r.gated) {
      const auto logits = model->forward(images).to(torch::kCPU).contiguous();
      add_batch(r, batch, logits.data_ptr<float>(), nullptr, nullptr);
      continue;
    }
    const GatedOutput out = model->forward_gated(images, GateControl{});
    const auto logits = out.logits.to(torch::kCPU).contiguous();
    const auto masks = torch::cat(out.masks, 1).to(torch::kCPU, torch::kUInt8).contiguous();  // (N, gated maps)
    const auto macs = example_macs(*cost, out.masks);
    add_batch(r, batch, logits.data_ptr<float>(), masks.data_ptr<std::uint8_t>(), macs.data());
  }
}

void evaluate_on_engine(DenseNet& model, const Normalization& norm, Loader& loader, EvalResult& r) {
  Engine engine(export_weights(model, model->config(), norm));
  const int threads = torch::get_num_threads();
  const int classes = static_cast<int>(r.class_total.size());
  std::vector<float> logits;
  std::vector<EngineStats> stats;
  std::vector<std::uint8_t> masks;
  std::vector<std::int64_t> macs;
  Batch batch;
  while (loader.next(batch)) {
    logits.resize(static_cast<std::size_t>(batch.size) * classes);
    stats.assign(r.gated ? batch.size : 0, EngineStats{});
    engine.forward_batch(batch.images.data(), batch.size, logits.data(), r.gated ? stats.data() : nullptr, threads);
    masks.clear();
    macs.clear();
    for (const auto& s : stats) {
      masks.insert(masks.end(), s.masks.begin(), s.masks.end());
      macs.push_back(s.macs);
    }
    add_batch(r, batch, logits.data(), masks.data(), macs.data());
  }
}

}  // namespace

bool engine_evaluates(const DenseNet& model) {
  return !model->config().sampled_inference && device_of(*model).is_cpu();
}

EvalResult evaluate(DenseNet& model, const Dataset& data, const Normalization& norm, int batch_size,
                    EvalBackend backend) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  Loader loader = plain_loader(data, norm, batch_size, model);
  loader.start_epoch(0);
  EvalResult r = empty_result(model, data.num_classes);
  r.on_engine = backend == EvalBackend::kAuto && engine_evaluates(model);
  if (r.on_engine)
    evaluate_on_engine(model, norm, loader, r);
  else
    evaluate_on_libtorch(model, loader, data, r);
  finish(r, data.num_classes);
  if (was_training) model->train();
  return r;
}

double mask_shuffle_accuracy(DenseNet& model, const Dataset& data, const Normalization& norm,
                             const EvalResult& gated, int batch_size, std::uint64_t seed) {
  if (gated.masks.examples == 0) return 0;
  // One mask for every example (a static mask, or a warm-up epoch tested all on): another
  // image's mask is the same mask, so the pass would recompute gated's own accuracy.
  if (gated.dependence.distinct_masks == 1) return gated.accuracy();
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  const auto perm = shuffle_permutation(gated.masks.examples, seed);
  Loader loader = plain_loader(data, norm, batch_size, model);
  loader.start_epoch(0);
  std::unique_ptr<Engine> engine;
  if (gated.on_engine) {
    EngineOptions options;
    options.mode = EngineMode::kGiven;
    engine = std::make_unique<Engine>(export_weights(model, model->config(), norm), options);
  }
  const int classes = data.num_classes;
  const torch::Device device = device_of(*model);
  std::vector<float> logits;
  std::vector<std::uint8_t> masks;
  std::size_t first = 0, correct = 0;
  Batch batch;
  while (loader.next(batch) && first < perm.size()) {
    const std::vector<std::size_t> rows(perm.begin() + first, perm.begin() + first + batch.size);
    if (engine) {
      masks.clear();
      for (auto row : rows)
        masks.insert(masks.end(), gated.masks.bits.begin() + row * gated.masks.maps,
                     gated.masks.bits.begin() + (row + 1) * gated.masks.maps);
      logits.resize(static_cast<std::size_t>(batch.size) * classes);
      engine->forward_batch(batch.images.data(), batch.size, logits.data(), nullptr, torch::get_num_threads(),
                            masks.data());
    } else {
      GateControl given;
      given.mode = GateMode::kGiven;
      given.masks = masks_of_rows(gated.masks, rows, model->config().dense_layers());
      for (auto& m : given.masks) m = m.to(device);
      const auto out = model->forward_gated(images_on(batch, data, device), given).logits.to(torch::kCPU).contiguous();
      logits.assign(out.data_ptr<float>(), out.data_ptr<float>() + out.numel());
    }
    for (int i = 0; i < batch.size; ++i)
      correct += first_argmax(logits.data() + static_cast<std::size_t>(i) * classes, classes) == batch.labels[i];
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

nlohmann::json per_example_json(const EvalResult& r) {
  nlohmann::json j = {
      {"label", r.labels}, {"prediction", r.predictions}, {"loss", r.losses}, {"confidence", r.confidences}};
  if (!r.gated) return j;
  j["macs"] = r.macs;
  nlohmann::json masks = nlohmann::json::array();
  std::string row(r.masks.maps, '0');
  for (std::size_t i = 0; i < r.masks.examples; ++i) {
    for (std::size_t m = 0; m < r.masks.maps; ++m) row[m] = r.masks.bits[i * r.masks.maps + m] ? '1' : '0';
    masks.emplace_back(row);
  }
  j["mask"] = std::move(masks);
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
  const torch::Device device = device_of(*model);
  Batch batch;
  for (int b = 0; b < batches && loader.next(batch); ++b) model->forward(images_on(batch, data, device));
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
  const torch::Device device = device_of(*model);
  Batch batch;
  for (int b = 0; b < batches && loader.next(batch); ++b)
    model->forward_gated(images_on(batch, data, device),
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
  Loader loader = plain_loader(data, norm, batch_size, model);
  loader.start_epoch(0);
  if (model->config().gated)
    recalibrate_gated(model, loader, data, batches);
  else
    recalibrate_dense(model, loader, data, batches);
  if (!was_training) model->eval();
}

}  // namespace mapgate

// The training loop; see trainer.h.
#include "train/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "common/error.h"
#include "common/dir_lock.h"
#include "common/regular_file.h"
#include "common/write_file.h"
#include "data/loader.h"
#include "model/densenet.h"
#include "train/checkpoint.h"
#include "train/distillation.h"
#include "train/evaluate.h"
#include "train/gumbel.h"
#include "train/numeric_guard.h"
#include "train/progress.h"
#include "train/reinforce.h"
#include "train/trained_model.h"

namespace mapgate {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

nlohmann::json normalization_json(const Normalization& n) {
  return {{"mean", n.mean}, {"std", n.std}};
}

void write_json_atomic(const std::string& path, const nlohmann::json& j) {
  const std::string text = j.dump(2) + "\n";
  write_file_atomic(path, text.data(), text.size());
}

// Keeps only the metrics of epochs <= `epochs_done` (a run killed between writing its
// metrics line and its checkpoint would otherwise repeat an epoch after --resume).
void trim_metrics(const std::string& path, int epochs_done) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return;  // no metrics yet
  // A regular file only (a FIFO would block, /dev/zero never end), of bounded size.
  const SizeLimit limit{std::uint64_t{1} << 28, "a metrics file may take (256 KiB per line for 1000 epochs)"};
  std::istringstream in(read_regular_file<std::string>(path, limit, "metrics"));
  std::string kept, line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      if (nlohmann::json::parse(line).value("epoch", 0) <= epochs_done) kept += line + "\n";
    } catch (const nlohmann::json::exception&) {
      // A torn last line from a killed run: drop it.
    }
  }
  write_file_atomic(path, kept.data(), kept.size());
}

void append_line(const std::string& path, const std::string& line) {
  std::ofstream out(path, std::ios::app);
  out << line << "\n";
  out.flush();
  if (!out) throw Error("metrics " + quoted(path) + ": cannot append");
}

// Checks --out against --resume, creates it and locks it for the life of the run; the
// lock comes before anything is written or removed there.
DirLock prepare_run_dir(const TrainConfig& c) {
  const bool has_run = fs::exists(fs::path(c.out_dir) / kCheckpointFile);
  if (c.resume && !has_run)
    throw Error("--resume: " + quoted((fs::path(c.out_dir) / kCheckpointFile).string()) +
                " not found; nothing to resume");
  if (!c.resume && has_run)
    throw UsageError("--out " + quoted(c.out_dir) +
                     ": already holds a run (checkpoint.pt); pass --resume to continue it or "
                     "choose another directory");
  std::error_code ec;
  fs::create_directories(c.out_dir, ec);
  if (ec) throw Error("--out " + quoted(c.out_dir) + ": cannot create directory (" + ec.message() + ")");
  if (::access(c.out_dir.c_str(), W_OK) != 0)
    throw Error("--out " + quoted(c.out_dir) + ": directory is not writable");
  DirLock lock(c.out_dir, "--out");
  // Temporaries of a killed run's atomic writes (NAME.tmp.PID) are garbage: the file
  // they were meant to replace is intact.
  for (const auto& entry : fs::directory_iterator(c.out_dir, ec)) {
    const std::string name = entry.path().filename().string();
    for (const char* file : {kCheckpointFile, kConfigFile, kMetricsFile})
      if (name.rfind(std::string(file) + ".tmp.", 0) == 0) fs::remove(entry.path(), ec);
  }
  return lock;
}

// A resumed run keeps the settings it started with: a flag that would change what it
// computes must match the checkpoint's record. --epochs may change (to extend a run),
// and so may --threads, --test-limit and the data location.
void check_resume_settings(const nlohmann::json& saved, const nlohmann::json& now,
                           const std::string& checkpoint_file) {
  static const char* const kFree[] = {"data_dir", "out_dir", "epochs", "threads", "test_limit",
                                      "revision", "init", "skip_nonfinite"};
  for (const auto& [key, value] : now.items()) {
    if (std::find(std::begin(kFree), std::end(kFree), key) != std::end(kFree)) continue;
    if (saved.contains(key) && saved.at(key) == value) continue;
    throw UsageError("--resume: setting \"" + key + "\" is " + value.dump() + " now but " +
                     (saved.contains(key) ? saved.at(key).dump() : std::string("absent")) +
                     " in " + quoted(checkpoint_file) + "; a resumed run keeps its settings");
  }
}

// Gate parameters that train: none for --gates random, the biases alone for
// --gate-weights frozen (W stays 0, so the policy cannot depend on the input).
std::vector<torch::Tensor> trainable_gate_parameters(DenseNet& model, const TrainConfig& c) {
  std::vector<torch::Tensor> phi;
  if (!c.learns_gates()) return phi;
  const bool frozen = c.gate_weights == GateWeights::kFrozen;
  for (const auto& p : model->named_parameters()) {
    const std::string& name = p.key();
    if (name.rfind("gates.", 0) != 0) continue;
    if (frozen && name.size() > 10 && name.compare(name.size() - 10, 10, ".fc.weight") == 0) {
      p.value().requires_grad_(false);
      continue;
    }
    phi.push_back(p.value());
  }
  return phi;
}

// Every gate at W = 0 and b = +-logit for the maps `bits` keeps or drops (one 0/1 per
// gated map, layer after layer): a static mask.
void set_static_mask(DenseNet& model, const TrainConfig& c, const std::vector<int>& bits, double logit) {
  torch::NoGradGuard no_grad;
  const int k = c.model.growth, units = c.model.gate_outputs();  // per layer: its bits agree (validate)
  for (int l = 0; l < c.model.dense_layers(); ++l) {
    auto* gate = model->named_modules()["gates." + std::to_string(l)]->as<GateImpl>();
    gate->fc()->weight.zero_();
    for (int j = 0; j < units; ++j) gate->fc()->bias[j] = bits[l * k + j] ? logit : -logit;
  }
}

// The baselines' gates: W = 0 and b such that p = eps + (1 - 2 eps) sigmoid(b) is the
// layer's rate (--gates random), or b = +-10 for the maps --fixed-maps keeps or drops
// (--gates fixed: thresholded in training and inference, an exact static mask).
void set_fixed_gates(DenseNet& model, const TrainConfig& c) {
  if (c.gates == Gates::kFixed) return set_static_mask(model, c, c.fixed_maps, 10.0);
  torch::NoGradGuard no_grad;
  const double eps = c.model.p_clamp;
  for (int l = 0; l < c.model.dense_layers(); ++l) {
    auto* gate = model->named_modules()["gates." + std::to_string(l)]->as<GateImpl>();
    gate->fc()->weight.zero_();
    const double q = (c.random_keep[l] - eps) / (1 - 2 * eps);
    gate->fc()->bias.fill_(std::log(q / (1 - q)));
  }
}

// --gates frozen: the gates of the --init run, so the model takes that run's gate input,
// unit, threshold and p clamp; a dense run has no gates to keep.
void take_gate_settings(DenseNetConfig& model, const std::string& init) {
  const DenseNetConfig source = read_model_config(init);
  if (!source.gated)
    throw UsageError("--gates frozen: --init " + quoted(init) + " has no gates (trained with --gates off)");
  model.gate_standardize = source.gate_standardize;
  model.gate_per_layer = source.gate_per_layer;
  model.threshold = source.threshold;
  model.p_clamp = source.p_clamp;
}

// --init-mask: REINFORCE gates start at a static mask, b = +-3 (p = 0.95 or 0.05), W = 0.
constexpr double kInitMaskLogit = 3.0;

}  // namespace

std::uint64_t epoch_seed(std::uint64_t seed, int epoch) {
  // splitmix64 of (seed, epoch): well-spread, independent streams per epoch.
  std::uint64_t z = seed * 0x9E3779B97F4A7C15ULL + static_cast<std::uint64_t>(epoch) + 1;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

TrainSummary train(TrainConfig c, const DatasetSplits& full, std::ostream* log, const TrainHooks* hooks) {
  if (c.threads == 0) c.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  validate(c);
  const DirLock run_lock = prepare_run_dir(c);
  torch::set_num_threads(c.threads);

  const Dataset train_set = full.train.head(c.train_limit);
  const Dataset test_set = full.test.head(c.test_limit);
  if (train_set.size() == 0) throw Error("dataset " + quoted(c.dataset) + ": training split is empty");
  c.model.num_classes = train_set.num_classes;
  c.model.in_channels = train_set.channels;
  c.model.image_size = train_set.height;
  c.model.gated = c.gated();
  c.model.gate_standardize = c.learns_gates() && c.gate_input == GateInput::kStandardized;
  c.model.sampled_inference = c.gates == Gates::kRandom;
  c.model.gate_per_layer = c.gated() && c.gate_unit == GateUnit::kLayer;
  if (c.gates == Gates::kFrozen) take_gate_settings(c.model, c.init);
  const Normalization norm = compute_normalization(train_set);
  std::optional<Teacher> teacher;
  if (!c.distill.empty()) teacher.emplace(c.distill, c.dataset, c.model.num_classes, norm);

  torch::manual_seed(c.seed);
  DenseNet model(c.model);
  model->set_masked_norm(MaskedNorm{c.bn_stats == BnStats::kMasked});
  // theta (everything but the gates) by SGD; phi (the gates) by --gate-optimizer, see docs/method.md.
  const auto theta = split_parameters(*model).first;
  torch::optim::SGD optimizer(
      theta, torch::optim::SGDOptions(c.lr).momentum(c.momentum).nesterov(true).weight_decay(c.weight_decay));
  const auto phi = trainable_gate_parameters(model, c);
  std::unique_ptr<torch::optim::Optimizer> gate_optimizer =
      phi.empty() ? nullptr : make_gate_optimizer(c.gate_optimizer, c.gate_lr, phi);
  std::unique_ptr<GatedCost> gated_cost;
  if (c.gated()) gated_cost = std::make_unique<GatedCost>(c.model);
  double mean_baseline = std::nan("");

  const std::string run = c.out_dir;
  const std::string checkpoint_file = (fs::path(run) / kCheckpointFile).string();
  const std::string metrics_file = (fs::path(run) / kMetricsFile).string();
  int start_epoch = 0;
  if (c.resume) {
    Checkpoint checkpoint(checkpoint_file);
    if (checkpoint.state().contains("config"))
      check_resume_settings(checkpoint.state().at("config"), to_json(c), checkpoint_file);
    checkpoint.load_model(*model);
    checkpoint.load_optimizer(optimizer);
    if (gate_optimizer) checkpoint.load_optimizer(*gate_optimizer, "gate_optimizer");
    start_epoch = checkpoint.epoch();
    if (checkpoint.state().contains("mean_baseline") && checkpoint.state()["mean_baseline"].is_number())
      mean_baseline = checkpoint.state()["mean_baseline"].get<double>();
    trim_metrics(metrics_file, start_epoch);
    if (log) *log << "resuming " << run << " after epoch " << start_epoch << "\n";
  } else {
    if (!c.init.empty()) {
      // Dense weights from another run; every non-gate tensor must be there and fit.
      // --gates frozen keeps the gates too.
      Checkpoint init(checkpoint_path(c.init));
      const bool keep_gates = c.gates == Gates::kFrozen;
      init.load_model(*model, [keep_gates](const std::string& name) {
        return !keep_gates && name.rfind("gates.", 0) == 0;
      });
      const char* gates = keep_gates ? " (its gates, frozen)"
                          : !c.init_mask.empty() ? " (gates at --init-mask)"
                          : c.gated() ? " (gates fresh)" : "";
      if (log) *log << "initialised from " << init.path() << gates << "\n";
    }
    if (c.gates == Gates::kRandom || c.gates == Gates::kFixed) set_fixed_gates(model, c);
    if (!c.init_mask.empty()) set_static_mask(model, c, c.init_mask, kInitMaskLogit);
    std::ofstream(metrics_file, std::ios::trunc);
  }
  nlohmann::json config_json = to_json(c);
  write_json_atomic((fs::path(run) / kConfigFile).string(), config_json);

  nlohmann::json state = {{"config", config_json},
                          {"model", to_json(c.model)},
                          {"dataset", c.dataset},
                          {"class_names", train_set.class_names},
                          {"normalization", normalization_json(norm)}};

  LoaderOptions loader_options;
  loader_options.batch_size = c.batch;
  loader_options.augment = c.augment;
  loader_options.seed = c.seed;
  Loader loader(train_set, norm, loader_options);
  const std::size_t steps = loader.batches_per_epoch();
  ProgressLine progress(log, log == &std::cerr && ::isatty(STDERR_FILENO));

  TrainSummary summary;
  summary.epochs_done = start_epoch;
  const int last_epoch = c.stop_after > 0 ? std::min(c.epochs, c.stop_after) : c.epochs;
  const auto run_start = Clock::now();
  double images_per_s_sum = 0;
  std::int64_t global_step = 0;  // over this call, for TrainHooks
  for (int epoch = start_epoch; epoch < last_epoch; ++epoch) {
    const double lr = c.lr_at(epoch);
    for (auto& group : optimizer.param_groups())
      static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
    torch::manual_seed(epoch_seed(c.seed, epoch));  // dropout stream
    model->train();
    loader.start_epoch(epoch);

    const auto epoch_start = Clock::now();
    double loss_sum = 0;
    std::size_t correct = 0, seen = 0, step = 0, skipped = 0;
    // Gated runs: sums over the epoch's batches (weighted by batch size) of the step stats.
    const bool gated_phase = c.gated() && epoch >= c.warmup_epochs;
    double kept_sum = 0, macs_sum = 0, reward_sum = 0, entropy_sum = 0, rate_loss_sum = 0, penalty = 0;
    Batch batch;
    while (loader.next(batch)) {
      auto images = torch::from_blob(batch.images.data(),
                                     {batch.size, train_set.channels, train_set.height, train_set.width});
      auto labels = torch::from_blob(batch.labels.data(), {batch.size}, torch::kInt64);
      optimizer.zero_grad();
      if (gate_optimizer) gate_optimizer->zero_grad();
      ++step;
      ++global_step;
      std::optional<BufferSnapshot> buffers;
      if (c.skip_nonfinite) buffers.emplace(*model);
      // A non-finite loss, advantage or gradient is found before the optimizers step:
      // the run stops naming it (the last checkpoint stays as it was), or with
      // --skip-nonfinite the batch leaves no trace (BN statistics restored) and is counted.
      std::string fault;
      torch::Tensor logits, loss, ce_loss;  // ce_loss: the CE node inside loss
      double loss_value = 0;
      GatedStep g;
      if (!gated_phase) {
        // Dense model, or a gated one's dense warm-up: all gates on, gates untouched.
        if (c.gated()) {
          GateControl all_on;
          all_on.mode = GateMode::kAllOn;
          logits = model->forward_gated(images, all_on).logits;
        } else {
          logits = model->forward(images);
        }
        loss = ce_loss = torch::nn::functional::cross_entropy(logits, labels);
        loss_value = loss.item<double>();
      } else {
        const double ramp = c.penalty_ramp_epochs > 0
                                ? (epoch - c.warmup_epochs + double(step - 1) / steps) / c.penalty_ramp_epochs
                                : 1.0;
        penalty = c.penalty * std::min(1.0, ramp);
        if (c.fixed_rate_gates()) {
          g = fixed_gates_step(model, images, labels, *gated_cost,
                               c.gates == Gates::kRandom ? GateMode::kSample : GateMode::kThreshold);
        } else if (c.gates == Gates::kGumbel) {
          GumbelSettings gs;
          gs.penalty = penalty;
          gs.target = c.target_rate;
          gs.temperature = c.gumbel_temperature;
          gs.entropy = c.entropy;
          g = gumbel_step(model, images, labels, *gated_cost, gs);
        } else {
          ReinforceSettings rs;
          rs.penalty = penalty;
          rs.cost = c.cost;
          rs.baseline = c.baseline;
          rs.entropy = c.entropy;
          rs.cost_gradient = c.cost_gradient;
          rs.variance = c.gate_variance;
          rs.logit_variance = c.logit_variance;
          rs.theta_masks = c.theta_masks;
          g = reinforce_step(model, images, labels, *gated_cost, rs, mean_baseline);
        }
        logits = g.logits;
        loss = g.loss;
        ce_loss = g.ce_loss;
        loss_value = g.ce;
        if (!g.advantage_finite) fault = "REINFORCE advantage";
        else if (std::isfinite(loss_value) && !all_finite(loss)) fault = "gate loss";  // CE finite, total not
      }
      if (teacher) {
        // The weights' CE becomes (1 - alpha) CE + alpha KD; gates keep their CE reward. The CE
        // node gets gradient 1 - alpha, exactly 1 or 0 at alpha 0 or 1 (tests rely on it).
        const auto kd = distillation_loss(logits, teacher->logits(images), c.distill_temperature);
        loss = loss + c.distill_weight * (kd - ce_loss);
      }
      if (!std::isfinite(loss_value)) fault = "loss (" + std::to_string(loss_value) + ")";
      if (fault.empty()) {
        loss.backward();
        if (hooks && hooks->after_backward) hooks->after_backward(global_step, *model);
        const std::string bad = first_nonfinite_gradient(*model);
        if (!bad.empty()) fault = "gradient of " + bad;
      }
      if (!fault.empty()) {
        if (!c.skip_nonfinite)
          throw Error("training: non-finite " + fault + " at epoch " + std::to_string(epoch + 1) +
                      " step " + std::to_string(step) +
                      " (lower --lr, or --skip-nonfinite to skip such batches); last good checkpoint: " +
                      quoted(checkpoint_file));
        buffers->restore(*model);
        ++skipped;
        continue;
      }
      optimizer.step();
      if (gated_phase) {
        if (gate_optimizer) gate_optimizer->step();
        reward_sum += g.reward * batch.size;
        entropy_sum += g.entropy * batch.size;
        rate_loss_sum += g.rate_loss * batch.size;
        kept_sum += g.kept * batch.size;
        macs_sum += g.macs * batch.size;
      } else if (c.gated()) {
        kept_sum += batch.size;
        macs_sum += static_cast<double>(gated_cost->dense_macs() + gated_cost->gate_macs()) * batch.size;
      }
      loss_sum += loss_value * batch.size;
      correct += logits.argmax(1).eq(labels).sum().item<std::int64_t>();
      seen += batch.size;

      StepStats s;
      s.epoch = epoch + 1;
      s.epochs = c.epochs;
      s.step = step;
      s.steps = steps;
      s.elapsed_s = seconds_since(epoch_start);
      s.images_per_s = seen / std::max(s.elapsed_s, 1e-9);
      s.data_wait_s = loader.wait_seconds();
      s.loss = loss_sum / seen;
      s.accuracy = double(correct) / seen;
      if (c.gated()) {
        s.gated = true;
        s.kept = kept_sum / seen;
        s.macs = macs_sum / seen;
        s.reward = gated_phase ? reward_sum / seen : 0;
        s.entropy = gated_phase ? entropy_sum / seen : 0;
      }
      const double epoch_eta = s.elapsed_s / step * (steps - step);
      const double epoch_time = s.elapsed_s / step * steps;
      s.eta_s = epoch_eta + epoch_time * (last_epoch - epoch - 1);
      progress.update(s);
    }
    if (seen == 0)
      throw Error("training: every batch of epoch " + std::to_string(epoch + 1) +
                  " had a non-finite loss, advantage or gradient and was skipped (lower --lr); "
                  "last good checkpoint: " + quoted(checkpoint_file));
    const double train_time = seconds_since(epoch_start);
    if (gated_phase) recalibrate_batch_norm(model, train_set, norm, c.bn_recal_batches, c.batch);
    const EvalResult test = evaluate(model, test_set, norm);
    const double shuffle_accuracy = c.gated() ? mask_shuffle_accuracy(model, test_set, norm, test) : 0;
    const double images_per_s = seen / std::max(train_time, 1e-9);
    images_per_s_sum += images_per_s;

    nlohmann::json metrics = {{"epoch", epoch + 1},
                              {"lr", lr},
                              {"train_loss", loss_sum / seen},
                              {"train_accuracy", double(correct) / seen},
                              {"test_loss", test.loss},
                              {"test_accuracy", test.accuracy()},
                              {"test_examples", test.examples},
                              {"train_seconds", train_time},
                              {"data_wait_seconds", loader.wait_seconds()},
                              {"images_per_s", images_per_s},
                              {"skipped_batches", skipped},
                              {"eval_seconds", seconds_since(epoch_start) - train_time}};
    if (c.gated()) {
      metrics["gated_phase"] = gated_phase;
      metrics["penalty"] = gated_phase ? penalty : 0.0;
      metrics["train_kept_fraction"] = kept_sum / seen;
      metrics["train_macs_mean"] = macs_sum / seen;
      metrics["train_reward"] = gated_phase ? reward_sum / seen : 0.0;
      metrics["gate_entropy"] = gated_phase ? entropy_sum / seen : 0.0;
      if (c.gates == Gates::kGumbel) metrics["train_rate_loss"] = gated_phase ? rate_loss_sum / seen : 0.0;
      metrics["test_macs_dense"] = test.macs_dense;
      metrics["test_macs_mean"] = test.macs_mean();
      metrics["test_active_fraction"] = test.active_fraction();
      metrics["test_speedup_potential"] = test.macs_dense / std::max(test.macs_mean(), 1.0);
      metrics["test_per_layer_active"] = test.layer_active;
      metrics["test_input_dependence"] = input_dependence_json(test, shuffle_accuracy);
    }
    append_line(metrics_file, metrics.dump());
    state["epoch"] = epoch + 1;
    if (c.gated()) {
      if (std::isnan(mean_baseline))
        state.erase("mean_baseline");
      else
        state["mean_baseline"] = mean_baseline;
    }
    try {
      save_checkpoint(checkpoint_file, *model, &optimizer, state, gate_optimizer.get());
    } catch (const Error&) {
      trim_metrics(metrics_file, epoch);  // this epoch has no checkpoint: forget its metrics line
      throw;
    }

    char line[256];
    std::snprintf(line, sizeof line,
                  "epoch %d/%d done in %s | train loss %.4f acc %.4f | test loss %.4f acc %.4f "
                  "| %.0f img/s, data wait %.1fs",
                  epoch + 1, c.epochs, format_duration(seconds_since(epoch_start)).c_str(),
                  loss_sum / seen, double(correct) / seen, test.loss, test.accuracy(),
                  images_per_s, loader.wait_seconds());
    std::string summary_line = line;
    if (skipped > 0) summary_line += " | skipped " + std::to_string(skipped) + " non-finite batch(es)";
    if (c.gated()) {
      char gate_line[192];
      std::snprintf(gate_line, sizeof gate_line,
                    " | test kept %.3f MACs %.1fM (x%.2f, CV %.3f) shuffled masks %+.4f | train kept %.3f reward %.4f H %.3f",
                    test.active_fraction(), test.macs_mean() / 1e6,
                    test.macs_dense / std::max(test.macs_mean(), 1.0), test.dependence.macs_cv,
                    shuffle_accuracy - test.accuracy(), kept_sum / seen,
                    reward_sum / seen, entropy_sum / seen);
      summary_line += gate_line;
    }
    progress.finish(summary_line);
    summary.epochs_done = epoch + 1;
    summary.test_accuracy = test.accuracy();
    summary.test_loss = test.loss;
  }
  const int ran = summary.epochs_done - start_epoch;
  if (ran > 0) summary.train_images_per_s = images_per_s_sum / ran;
  if (log && ran > 0)
    *log << "trained " << ran << " epoch(s) in " << format_duration(seconds_since(run_start))
         << "; checkpoint " << checkpoint_file << "\n";
  return summary;
}

}  // namespace mapgate

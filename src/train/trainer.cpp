// The training loop; see trainer.h. A run is set up (RUN/, model, optimizers, a fresh
// start or a resume), then every epoch trains its batches (train_step.h), tests,
// reports (epoch_report.h) and checkpoints.
#include "train/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <thread>

#include <c10/core/DeviceGuard.h>

#include "common/error.h"
#include "data/loader.h"
#include "model/densenet.h"
#include "train/autocast_scope.h"
#include "train/checkpoint.h"
#include "train/data_parallel.h"
#include "train/device.h"
#include "train/epoch_report.h"
#include "train/evaluate.h"
#include "train/gate_setup.h"
#include "train/multi_tensor_step.h"
#include "train/numeric_guard.h"
#include "train/progress.h"
#include "train/run_dir.h"
#include "train/train_step.h"

namespace mapgate {
namespace {

using Clock = std::chrono::steady_clock;

// How long a process waits for the others (rendezvous, a collective) before giving up:
// rank 0's test pass and checkpoint make the others wait at their next collective.
constexpr std::chrono::minutes kGroupTimeout{30};

// This process's place in a data-parallel group (none in one process), its backend from
// --dist-backend; the flag is checked in one process too.
std::unique_ptr<DataParallel> join_group(const TrainConfig& c, torch::Device device) {
  const DistBackend backend = resolve_dist_backend(c.dist_backend, device, c.world.local_size, cuda_device_count());
  if (c.world.size == 1) return nullptr;
  return std::make_unique<DataParallel>(c.world, kGroupTimeout, backend, device);
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

nlohmann::json normalization_json(const Normalization& n) {
  return {{"mean", n.mean}, {"std", n.std}};
}

// A resumed run keeps the settings it started with: a flag that would change what it
// computes must match the checkpoint's record. --epochs may change (to extend a run),
// and so may --threads, --test-limit and the data location. Keys of either side count:
// config.json holds some settings only when they are set (--amp, --gate-unit, ...), and
// leaving out such a setting on --resume would otherwise drop it silently.
void check_resume_settings(const nlohmann::json& saved, const nlohmann::json& now,
                           const std::string& checkpoint_file) {
  static const char* const kFree[] = {"data_dir", "out_dir", "epochs", "threads", "device", "test_limit",
                                      "revision", "init", "skip_nonfinite"};
  auto shown = [](const nlohmann::json& side, const std::string& key) {
    return side.contains(key) ? side.at(key).dump() : std::string("absent");
  };
  auto check = [&](const std::string& key) {
    if (std::find(std::begin(kFree), std::end(kFree), key) != std::end(kFree)) return;
    if (saved.contains(key) && now.contains(key) && saved.at(key) == now.at(key)) return;
    throw UsageError("--resume: setting \"" + key + "\" is " + shown(now, key) + " now but " + shown(saved, key) +
                     " in " + quoted(checkpoint_file) + "; a resumed run keeps its settings");
  };
  for (const auto& item : now.items()) check(item.key());
  for (const auto& item : saved.items())
    if (!now.contains(item.key())) check(item.key());
}

// --threads 0 means every core; the flags are checked before RUN/ is touched.
TrainConfig checked(TrainConfig c) {
  if (c.threads == 0) c.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  validate(c);
  return c;
}

class Trainer {
 public:
  Trainer(TrainConfig config, const DatasetSplits& full, std::ostream* log, const TrainHooks* hooks);
  TrainSummary run();

 private:
  void build_model();
  void start_or_resume();
  EpochReport train_epoch(int epoch, int last_epoch);
  // One batch: step, checks, update, totals. False if it was skipped (--skip-nonfinite).
  bool train_batch(Batch& batch, int epoch, std::size_t step, EpochReport& report);
  void show_progress(const EpochReport& report, std::size_t step, Clock::time_point start, int last_epoch);
  // The metrics line, then the checkpoint (a checkpoint that fails takes its line back).
  void save(const EpochReport& report);
  void test_epoch(EpochReport& report);
  // Data-parallel steps (no-ops in one process): average the gradients (a fault on any
  // rank becomes one on every rank), sum the epoch's totals, give every rank rank 0's
  // weights and buffers.
  void share_gradients(bool gated_phase, std::string& fault);
  void share_totals(EpochTotals& totals);
  void share_state_of_rank0(bool parameters, const std::string& what);
  bool lead() const { return !dp_ || dp_->rank() == 0; }
  std::string checkpoint_file() const { return run_ ? run_->checkpoint_file() : checkpoint_path(c_.out_dir); }

  TrainConfig c_;
  torch::Device device_;               // --device
  c10::DeviceGuard on_device_;         // the current device while training: device_ (DDP's set_device)
  std::unique_ptr<DataParallel> dp_;  // several processes
  std::ostream* log_;                 // rank 0 only
  const TrainHooks* hooks_;
  ProgressLine progress_;
  std::optional<RunDir> run_;         // rank 0 only
  Dataset train_set_, test_set_;
  Normalization norm_;
  std::optional<Teacher> teacher_;
  DenseNet model_{nullptr};
  std::unique_ptr<torch::optim::SGD> optimizer_;  // theta
  std::unique_ptr<torch::optim::Optimizer> gate_optimizer_;  // phi, when the gates train
  std::unique_ptr<GatedCost> gated_cost_;
  double mean_baseline_ = std::nan("");
  int start_epoch_ = 0;
  nlohmann::json state_;  // the checkpoint's record
  std::unique_ptr<Loader> loader_;
  std::int64_t global_step_ = 0;  // over this call, for TrainHooks
};

Trainer::Trainer(TrainConfig config, const DatasetSplits& full, std::ostream* log, const TrainHooks* hooks)
    : c_(checked(std::move(config))),
      device_(open_device("--device", c_.device, c_.world.local_rank)),
      on_device_(device_),
      dp_(join_group(c_, device_)),
      log_(lead() ? log : nullptr),
      hooks_(hooks),
      progress_(log_, log_ == &std::cerr && ::isatty(STDERR_FILENO)) {
  if (lead()) run_.emplace(c_.out_dir, c_.resume);
  if (log_ && dp_) *log_ << dp_->size() << " processes, c10d " << choice_name(dp_->backend()) << "\n";
  torch::set_num_threads(c_.threads);
  train_set_ = full.train.head(c_.train_limit);
  test_set_ = full.test.head(c_.test_limit);
  if (train_set_.size() == 0) throw Error("dataset " + quoted(c_.dataset) + ": training split is empty");
  c_.model.num_classes = train_set_.num_classes;
  c_.model.in_channels = train_set_.channels;
  c_.model.image_size = train_set_.height;
  apply_gate_flags(c_);
  norm_ = compute_normalization(train_set_);
  if (!c_.distill.empty()) teacher_.emplace(c_.distill, c_.dataset, c_.model.num_classes, norm_, device_);
  build_model();
  start_or_resume();
  share_state_of_rank0(true, "broadcasting the starting weights");
  LoaderOptions loader_options;
  loader_options.batch_size = c_.batch;
  loader_options.augment = c_.augment;
  loader_options.seed = c_.seed;
  loader_options.shard = c_.world.rank;
  loader_options.shards = c_.world.size;
  loader_options.stage = make_batch_stage(train_set_, device_);
  loader_ = std::make_unique<Loader>(train_set_, norm_, loader_options);
}

// theta (everything but the gates) by SGD; phi (the gates) by --gate-optimizer, see docs/method.md.
void Trainer::build_model() {
  torch::manual_seed(c_.seed);
  model_ = DenseNet(c_.model);
  model_->to(device_);  // before the optimizers see the parameters; checkpoints load into them there
  model_->set_masked_norm(MaskedNorm{c_.bn_stats == BnStats::kMasked});
  optimizer_ = std::make_unique<torch::optim::SGD>(
      split_parameters(*model_).first,
      torch::optim::SGDOptions(c_.lr).momentum(c_.momentum).nesterov(true).weight_decay(c_.weight_decay));
  const auto phi = trainable_gate_parameters(model_, c_);
  if (!phi.empty()) gate_optimizer_ = make_gate_optimizer(c_.gate_optimizer, c_.gate_lr, phi);
  if (c_.gated()) gated_cost_ = std::make_unique<GatedCost>(c_.model);
}

void Trainer::start_or_resume() {
  if (c_.resume) {
    Checkpoint checkpoint(checkpoint_file());
    if (lead() && checkpoint.state().contains("config"))
      check_resume_settings(checkpoint.state().at("config"), to_json(c_), checkpoint_file());
    checkpoint.load_model(*model_);
    checkpoint.load_optimizer(*optimizer_);
    if (gate_optimizer_) checkpoint.load_optimizer(*gate_optimizer_, "gate_optimizer");
    start_epoch_ = checkpoint.epoch();
    if (checkpoint.state().contains("mean_baseline") && checkpoint.state()["mean_baseline"].is_number())
      mean_baseline_ = checkpoint.state()["mean_baseline"].get<double>();
    if (run_) run_->trim_metrics(start_epoch_);
    if (log_) *log_ << "resuming " << run_->path() << " after epoch " << start_epoch_ << "\n";
  } else {
    if (!c_.init.empty() && lead()) {  // the other ranks get the weights by broadcast
      // Dense weights from another run; every non-gate tensor must be there and fit.
      // --gates frozen keeps the gates too.
      Checkpoint init(checkpoint_path(c_.init));
      const bool keep_gates = c_.gates == Gates::kFrozen;
      init.load_model(*model_, [keep_gates](const std::string& name) {
        return !keep_gates && name.rfind("gates.", 0) == 0;
      });
      const char* gates = keep_gates ? " (its gates, frozen)"
                          : !c_.init_mask.empty() ? " (gates at --init-mask)"
                          : c_.gated() ? " (gates fresh)" : "";
      if (log_) *log_ << "initialised from " << init.path() << gates << "\n";
    }
    initialise_gates(model_, c_);
    if (run_) run_->clear_metrics();
  }
  const nlohmann::json config_json = to_json(c_);
  if (run_) run_->write_config(config_json);
  state_ = {{"config", config_json},
            {"model", to_json(c_.model)},
            {"dataset", c_.dataset},
            {"class_names", train_set_.class_names},
            {"normalization", normalization_json(norm_)},
            {"processes", c_.world.size}};
}

EpochReport Trainer::train_epoch(int epoch, int last_epoch) {
  EpochReport report;
  report.epoch = epoch + 1;
  report.epochs = c_.epochs;
  report.lr = c_.lr_at(epoch);
  report.gated = c_.gated();
  report.gated_phase = c_.gated() && epoch >= c_.warmup_epochs;
  report.gumbel = c_.gates == Gates::kGumbel;
  for (auto& group : optimizer_->param_groups())
    static_cast<torch::optim::SGDOptions&>(group.options()).lr(report.lr);
  torch::manual_seed(epoch_seed(c_.seed, epoch) + static_cast<std::uint64_t>(c_.world.rank));  // dropout, gate samples
  model_->train();
  loader_->start_epoch(epoch);
  const auto start = Clock::now();
  const std::size_t steps = loader_->batches_per_epoch();
  std::size_t step = 0;
  Batch batch;
  while (loader_->next(batch)) {
    ++step;
    ++global_step_;
    if (report.gated_phase) report.penalty = ramped_penalty(c_, epoch + double(step - 1) / steps);
    if (train_batch(batch, epoch, step, report)) show_progress(report, step, start, last_epoch);
  }
  if (report.train.seen == 0)
    throw Error("training: every batch of epoch " + std::to_string(epoch + 1) +
                " had a non-finite loss, advantage or gradient and was skipped (lower --lr); "
                "last good checkpoint: " + quoted(checkpoint_file()));
  return report;
}

// A non-finite loss, advantage or gradient is found before the optimizers step: the run
// stops naming it (the last checkpoint stays as it was), or with --skip-nonfinite the
// batch leaves no trace (BN statistics restored) and is counted.
bool Trainer::train_batch(Batch& batch, int epoch, std::size_t step, EpochReport& report) {
  const auto images = images_on(batch, train_set_, device_);
  const auto labels = labels_on(batch, device_);
  multi_tensor_zero_grad(*optimizer_);
  if (gate_optimizer_) multi_tensor_zero_grad(*gate_optimizer_);
  std::optional<BufferSnapshot> buffers;
  if (c_.skip_nonfinite) buffers.emplace(*model_);
  const StepContext context{c_, gated_cost_.get(), teacher_ ? &*teacher_ : nullptr, &mean_baseline_};
  TrainStep s = [&] {  // the forwards (and losses) under --amp; backward outside, as in PyTorch
    AutocastScope amp(device_, c_.amp == Amp::kBf16);
    return train_step(model_, images, labels, report.gated_phase, report.penalty, context);
  }();
  if (s.fault.empty()) {
    s.out.loss.backward();
    if (hooks_ && hooks_->after_backward) hooks_->after_backward(global_step_, *model_);
  }
  share_gradients(report.gated_phase, s.fault);
  if (s.fault.empty()) {
    const std::string bad = first_nonfinite_gradient(*model_);
    if (!bad.empty()) s.fault = "gradient of " + bad;
  }
  if (!s.fault.empty()) {
    if (!c_.skip_nonfinite)
      throw Error("training: non-finite " + s.fault + " at epoch " + std::to_string(epoch + 1) + " step " +
                  std::to_string(step) + " (lower --lr, or --skip-nonfinite to skip such batches); last good checkpoint: " +
                  quoted(checkpoint_file()));
    buffers->restore(*model_);
    ++report.train.skipped;
    return false;
  }
  multi_tensor_step(*optimizer_);
  if (report.gated_phase && gate_optimizer_) multi_tensor_step(*gate_optimizer_);
  const auto correct = s.out.logits.argmax(1).eq(labels).sum().item<std::int64_t>();
  report.train.add(s.out, static_cast<std::size_t>(correct), static_cast<std::size_t>(batch.size));
  return true;
}

void Trainer::show_progress(const EpochReport& report, std::size_t step, Clock::time_point start, int last_epoch) {
  const std::size_t steps = loader_->batches_per_epoch();
  StepStats s = report.train.running(c_.gated());
  s.epoch = report.epoch;
  s.epochs = c_.epochs;
  s.step = step;
  s.steps = steps;
  s.elapsed_s = seconds_since(start);
  s.images_per_s = report.train.seen * static_cast<double>(c_.world.size) / std::max(s.elapsed_s, 1e-9);
  s.data_wait_s = loader_->wait_seconds();
  const double epoch_time = s.elapsed_s / step * steps;
  s.eta_s = s.elapsed_s / step * (steps - step) + epoch_time * (last_epoch - report.epoch);
  progress_.update(s);
}

void Trainer::save(const EpochReport& report) {
  run_->append_metrics(report.to_json());
  state_["epoch"] = report.epoch;
  if (c_.gated()) {
    if (std::isnan(mean_baseline_))
      state_.erase("mean_baseline");
    else
      state_["mean_baseline"] = mean_baseline_;
  }
  try {
    save_checkpoint(run_->checkpoint_file(), *model_, optimizer_.get(), state_, gate_optimizer_.get());
  } catch (const Error&) {
    run_->trim_metrics(report.epoch - 1);  // this epoch has no checkpoint: forget its metrics line
    throw;
  }
}

void Trainer::share_gradients(bool gated_phase, std::string& fault) {
  if (!dp_) return;
  std::vector<torch::Tensor> grads;
  auto add = [&grads](const std::vector<torch::Tensor>& parameters) {
    for (const torch::Tensor& p : parameters) {
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      grads.push_back(p.grad());
    }
  };
  for (const auto& group : optimizer_->param_groups()) add(group.params());
  if (gated_phase && gate_optimizer_)
    for (const auto& group : gate_optimizer_->param_groups()) add(group.params());
  const torch::Tensor faults = torch::full({1}, fault.empty() ? 0.0f : 1.0f, grads.front().options());
  grads.push_back(faults);
  dp_->sum(grads, "averaging the gradients");
  grads.pop_back();
  for (torch::Tensor& g : grads) g.div_(dp_->size());
  if (fault.empty() && faults.item<float>() > 0) fault = "loss or REINFORCE advantage on another process";
}

void Trainer::share_totals(EpochTotals& t) {
  if (!dp_) return;
  const torch::Tensor sums = torch::tensor({static_cast<double>(t.seen), static_cast<double>(t.correct), t.loss_sum,
                                            t.kept_sum, t.macs_sum, t.reward_sum, t.entropy_sum, t.rate_loss_sum},
                                           torch::kFloat64);
  dp_->sum({sums}, "summing the epoch's training totals");
  const auto v = sums.accessor<double, 1>();
  t.seen = static_cast<std::size_t>(v[0]);
  t.correct = static_cast<std::size_t>(v[1]);
  t.loss_sum = v[2];
  t.kept_sum = v[3];
  t.macs_sum = v[4];
  t.reward_sum = v[5];
  t.entropy_sum = v[6];
  t.rate_loss_sum = v[7];
}

// Parameters (at the start) and buffers (BN statistics, after every epoch) of rank 0, and
// the running-mean baseline: every rank then holds what rank 0 checkpoints, so a resumed
// run continues exactly, with any number of processes.
void Trainer::share_state_of_rank0(bool parameters, const std::string& what) {
  if (!dp_) return;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> tensors;
  if (parameters)
    for (const torch::Tensor& p : model_->parameters()) tensors.push_back(p);
  for (const torch::Tensor& b : model_->buffers()) tensors.push_back(b);
  const torch::Tensor baseline = torch::full({1}, mean_baseline_, torch::kFloat64);
  tensors.push_back(baseline);
  dp_->broadcast(tensors, what);
  mean_baseline_ = baseline.item<double>();
}

// The epoch's test pass. A warm-up epoch trained the dense network, every gate on: it is
// tested so (tau 0 keeps every map, since p >= eps > 0), not under the untrained gates.
void Trainer::test_epoch(EpochReport& report) {
  const double tau = model_->config().threshold;
  const bool all_on = c_.gated() && !report.gated_phase;
  if (all_on) model_->set_threshold(0);
  report.test = evaluate(model_, test_set_, norm_);
  if (c_.gated()) report.shuffle_accuracy = mask_shuffle_accuracy(model_, test_set_, norm_, report.test);
  if (all_on) model_->set_threshold(tau);
}

TrainSummary Trainer::run() {
  TrainSummary summary;
  summary.epochs_done = start_epoch_;
  const int last_epoch = c_.stop_after > 0 ? std::min(c_.epochs, c_.stop_after) : c_.epochs;
  const auto run_start = Clock::now();
  double images_per_s_sum = 0;
  for (int epoch = start_epoch_; epoch < last_epoch; ++epoch) {
    const auto epoch_start = Clock::now();
    EpochReport report = train_epoch(epoch, last_epoch);
    share_totals(report.train);
    report.train_seconds = seconds_since(epoch_start);
    if (report.gated_phase && lead()) recalibrate_batch_norm(model_, train_set_, norm_, c_.bn_recal_batches, c_.batch);
    share_state_of_rank0(false, "broadcasting rank 0's BatchNorm statistics");
    summary.epochs_done = report.epoch;
    if (!lead()) continue;  // rank 0 tests, reports and checkpoints
    test_epoch(report);
    report.data_wait_seconds = loader_->wait_seconds();
    report.eval_seconds = seconds_since(epoch_start) - report.train_seconds;
    save(report);
    progress_.finish(report.summary(seconds_since(epoch_start)));
    images_per_s_sum += report.images_per_s();
    summary.test_accuracy = report.test.accuracy();
    summary.test_loss = report.test.loss();
  }
  const int ran = summary.epochs_done - start_epoch_;
  if (ran > 0) summary.train_images_per_s = images_per_s_sum / ran;
  if (log_ && ran > 0)
    *log_ << "trained " << ran << " epoch(s) in " << format_duration(seconds_since(run_start)) << "; checkpoint "
          << checkpoint_file() << "\n";
  return summary;
}

}  // namespace

std::uint64_t epoch_seed(std::uint64_t seed, int epoch) {
  // splitmix64 of (seed, epoch): well-spread, independent streams per epoch.
  std::uint64_t z = seed * 0x9E3779B97F4A7C15ULL + static_cast<std::uint64_t>(epoch) + 1;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

TrainSummary train(TrainConfig c, const DatasetSplits& full, std::ostream* log, const TrainHooks* hooks) {
  return Trainer(std::move(c), full, log, hooks).run();
}

}  // namespace mapgate

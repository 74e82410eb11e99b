// `mapgate train`: train a DenseNet on a dataset; see src/train/trainer.h.
#include <algorithm>
#include <cstdlib>
#include <iostream>

#include "cli/choice_option.h"
#include "cli/commands.h"
#include "cli/launch_workers.h"
#include "cli/model_flags.h"
#include "data/data_dir.h"
#include "train/data_parallel.h"
#include "train/device.h"
#include "train/trainer.h"

namespace mapgate {
namespace {

// One of several processes: without --threads, this machine's cores are shared among its
// LOCAL_WORLD_SIZE processes (torchrun and --nproc set it).
int threads_per_process(const WorldSettings& world) { return std::max(1, default_threads() / world.local_size); }

void run(TrainConfig config, const std::string& data_flag, int nproc, bool threads_given) {
  check_dataset_flag(config.dataset);
  validate(config);
  config.world = world_from_environment([](const char* name) { return std::getenv(name); });
  if (nproc < 1 || nproc > kMaxThreads)
    throw UsageError("--nproc " + std::to_string(nproc) + ": expected 1.." + std::to_string(kMaxThreads));
  if (nproc > 1 && config.world.size > 1)
    throw UsageError("--nproc " + std::to_string(nproc) + " and WORLD_SIZE=" + std::to_string(config.world.size) +
                     " in the environment: use one (--nproc starts the processes itself)");
  if ((nproc > 1 || config.world.size > 1) && !data_parallel_available())
    throw UsageError("--nproc / WORLD_SIZE > 1: this mapgate was built without c10d's Gloo backend "
                     "(libgloo-dev), so it trains in one process only (docs/scale.md)");
  config.data_dir = resolve_data_dir(data_flag, config.dataset,
                                     [](const std::string& line) { std::cerr << line << "\n"; });
  if (nproc > 1) {
    // What every worker would refuse is refused here once: one line, not one per rank.
    resolve_dist_backend(config.dist_backend, open_device("--device", config.device), nproc, cuda_device_count());
    return launch_workers(nproc);  // the workers find the data resolved
  }
  if (config.world.size > 1 && !threads_given) config.threads = threads_per_process(config.world);
  const DatasetSplits data = load_dataset(config.dataset, config.data_dir);
  train(config, data, &std::cerr);
}

}  // namespace

void add_train_command(CLI::App& app, Action& action) {
  auto config = std::make_shared<TrainConfig>();
  auto data_flag = std::make_shared<std::string>();
  auto nproc = std::make_shared<int>(1);
  config->threads = default_threads();
  auto* cmd = app.add_subcommand("train", "Train a DenseNet (checkpoints every epoch, --resume continues)");
  cmd->footer("Examples:\n  mapgate train --dataset cifar10 --out runs/dense --depth 22 --growth 12 --epochs 10\n  mapgate train --dataset cifar10 --out runs/gated --depth 22 --growth 12 --epochs 1 --lr 0.01 --schedule cosine \\\n"
             "      --init models/densenet22-cifar10 --gates reinforce --penalty 8 --bn-recal 20\n  mapgate train --out runs/gated --resume   # continue after an interruption");
  cmd->add_option("--dataset", config->dataset, "cifar10, cifar100, mnist or fashion-mnist");
  cmd->add_option("--data", *data_flag, "dataset directory (default: $MAPGATE_DATA or the per-user cache)");
  cmd->add_option("--out", config->out_dir, "run directory: config.json, metrics.jsonl, checkpoint.pt")->required();
  add_model_flags(cmd, config->model);
  cmd->add_option("--epochs", config->epochs, "epochs (the DenseNet recipe uses 300)");
  cmd->add_option("--batch", config->batch, "mini-batch size");
  cmd->add_option("--lr", config->lr, "initial learning rate");
  add_choice_option(cmd, config->schedule, "step (/10 at 50% and 75% of epochs) or cosine");
  cmd->add_option("--momentum", config->momentum, "Nesterov momentum");
  cmd->add_option("--weight-decay", config->weight_decay, "L2 weight decay");
  auto* threads = cmd->add_option("--threads", config->threads,
                                  "LibTorch intra-op threads per process (default: the cores, shared among --nproc)");
  cmd->add_option("--device", config->device,
                  "where LibTorch trains: cpu, cuda or cuda:N (the engine is CPU-only; docs/scale.md)");
  cmd->add_option("--nproc", *nproc,
                  "data-parallel processes on this machine, each on its share of every epoch's batches "
                  "(--batch is per process; docs/scale.md). torchrun-style launchers set WORLD_SIZE etc. instead");
  add_choice_option(cmd, config->dist_backend,
                    "c10d backend of several processes: gloo, nccl (GPUs, where LibTorch has it) or auto (nccl "
                    "when every process of a machine has a GPU of its own and this build has NCCL, else gloo)");
  cmd->add_option("--seed", config->seed, "seed of initialisation, data order and augmentation")
      ->check(non_negative());
  cmd->add_option("--train-limit", config->train_limit, "use only the first N training images (0: all)")
      ->check(non_negative());
  cmd->add_option("--test-limit", config->test_limit, "use only the first N test images (0: all)")
      ->check(non_negative());
  auto no_augment = std::make_shared<bool>(false);
  cmd->add_flag("--no-augment", *no_augment, "turn off the pad-4 random crop and horizontal flip (on by default)");
  cmd->add_flag("--resume", config->resume, "continue the run in --out from its checkpoint");
  cmd->add_option("--stop-after", config->stop_after,
                  "stop after this many epochs in total, resumable later (0: run to --epochs)");
  cmd->add_flag("--skip-nonfinite", config->skip_nonfinite,
                "skip a batch whose loss, REINFORCE advantage or gradient is not finite, counting it "
                "in metrics.jsonl (default: stop the run naming the step)");
  // Gates (docs/design.md §2-3, docs/method.md).
  add_choice_option(cmd, config->gates,
                  "off, reinforce, gumbel (straight-through Gumbel-sigmoid, target-rate loss); baselines: random "
                  "(masks drawn at the rates of --random-keep, also at inference) or fixed (the maps of --fixed-maps); "
                  "frozen: the gates of --init RUN kept as they are, the weights fine-tuned under their masks");
  cmd->add_option("--penalty", config->penalty,
                  "lambda: reward R = -CE - lambda * cost (gumbel: weight of the target-rate loss)");
  add_choice_option(cmd, config->cost, "maps (fraction of gated maps on) or macs (fraction of dense MACs)");
  add_choice_option(cmd, config->baseline, "REINFORCE baseline: greedy (self-critical: the thresholded masks' reward, a LibTorch "
                  "training-mode pass), engine (the same on the inference engine in eval mode, CPU only, "
                  "cheaper), mean (moving average) or auto (engine on the CPU with --theta-masks sampled, "
                  "otherwise greedy)");
  cmd->add_option("--threshold", config->model.threshold, "tau: inference keeps a map when p > tau");
  cmd->add_option("--p-clamp", config->model.p_clamp, "eps: gate probabilities stay in [eps, 1-eps]");
  cmd->add_option("--entropy", config->entropy, "entropy bonus beta for the gate policy");
  cmd->add_option("--warmup-epochs", config->warmup_epochs, "dense epochs (all gates on) before gating");
  cmd->add_option("--penalty-ramp-epochs", config->penalty_ramp_epochs,
                  "raise lambda linearly over this many gated epochs (0: full lambda at once)");
  cmd->add_option("--gate-lr", config->gate_lr, "learning rate of the gates");
  add_choice_option(cmd, config->gate_optimizer, "adam or sgd (plain SGD, no momentum)");
  add_choice_option(cmd, config->gate_input,
                  "standardized (the GAP of the layer input through the gate's own BatchNorm) or raw");
  add_choice_option(cmd, config->gate_weights,
                  "learned, or frozen (input weights fixed at 0: a static mask learned by its biases alone)");
  add_choice_option(cmd, config->bn_stats,
                  "masked (BN statistics over the examples that keep each map) or all (switched-off zeros counted)");
  add_choice_option(cmd, config->cost_gradient,
                  "analytic (lambda * E[cost] differentiated through p) or reinforce (cost inside the reward)");
  cmd->add_option("--cost-target", config->cost_target,
                  "T: the penalty acts only while the batch's mean expected cost is above T, a fraction as "
                  "--cost counts it (e.g. 0.33 with --cost macs: about x3 fewer MACs); 0: always");
  cmd->add_option("--gate-variance", config->gate_variance,
                  "gamma: bonus for the batch variance of each gate's p (Bengio et al. 2015)");
  cmd->add_option("--logit-variance", config->logit_variance,
                  "delta: penalty on the batch variance of each gate's log-odds, a pull towards static "
                  "gates (0: off)");
  add_choice_option(cmd, config->theta_masks,
                  "sampled (weights train under the REINFORCE sample) or greedy (under the thresholded "
                  "masks inference uses; the sample only trains the gates)");
  add_choice_option(cmd, config->amp,
                  "off, or bf16: the training forwards under bfloat16 autocast (convolutions and linear layers in "
                  "bfloat16; weights, gradients, BatchNorm, gate probabilities and the loss in float32); "
                  "evaluation stays float32 (docs/scale.md)");
  add_choice_option(cmd, config->gate_unit,
                  "map (one decision per feature map, the paper's gates) or layer (one per dense layer, "
                  "shared by its k maps: a layer is computed whole or skipped, as in ConvNet-AIG)");
  cmd->add_option("--core-maps", config->model.core_maps,
                  "K: the first K maps of every layer are computed for every image, the gates decide the "
                  "other k - K (per-map gates, learned or --gates random; 0: every map gated)");
  cmd->add_option("--random-keep", config->random_keep,
                  "--gates random: kept rate of each gated layer (with --core-maps, of the whole layer, core "
                  "included), comma-separated")
      ->delimiter(',');
  cmd->add_option("--fixed-maps", config->fixed_maps,
                  "--gates fixed: 0/1 for every gated map (layers x growth, layer after layer), comma-separated")
      ->delimiter(',');
  cmd->add_option("--init-mask", config->init_mask,
                  "--gates reinforce: start every gate at this static mask (0/1 per gated map, as --fixed-maps; "
                  "bias +-3, W = 0), e.g. a fixed arm's, and let the gates depart from it")
      ->delimiter(',');
  cmd->add_option("--bn-recal", config->bn_recal_batches,
                  "recalibrate BN over this many training batches with thresholded masks before each eval");
  cmd->add_option("--gumbel-temperature", config->gumbel_temperature,
                  "gumbel: T in sigmoid((logit p + noise) / T)");
  cmd->add_option("--target-rate", config->target_rate, "gumbel: wanted kept fraction per layer");
  cmd->add_option("--init", config->init, "start from the weights of this run or checkpoint (gates fresh)");
  cmd->add_option("--distill", config->distill,
                  "teacher run or checkpoint: distil its logits into the weights (Hinton et al. 2015)");
  cmd->add_option("--distill-weight", config->distill_weight,
                  "alpha: the weights' loss is (1 - alpha) CE + alpha T^2 KL(teacher || student)");
  cmd->add_option("--distill-temperature", config->distill_temperature, "T: softmax temperature of both");
  cmd->callback([config, data_flag, no_augment, nproc, threads, &action] {
    config->augment = !*no_augment;
    const bool threads_given = threads->count() > 0;
    action = [config, data_flag, nproc, threads_given] { run(*config, *data_flag, *nproc, threads_given); };
  });
}

}  // namespace mapgate

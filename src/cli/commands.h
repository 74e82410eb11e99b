// Each subcommand registers its options on the CLI11 app and sets `action`, which
// main() runs after parsing. Library errors propagate to main() for the exit code.
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

namespace mapgate {

using Action = std::function<void()>;

void add_data_command(CLI::App& app, Action& action);
void add_train_command(CLI::App& app, Action& action);
void add_eval_command(CLI::App& app, Action& action);
void add_flops_command(CLI::App& app, Action& action);
void add_export_command(CLI::App& app, Action& action);
void add_bench_command(CLI::App& app, Action& action);
void add_infer_command(CLI::App& app, Action& action);
void add_demo_command(CLI::App& app, Action& action);
void add_upgrade_checkpoint_command(CLI::App& app, Action& action);

// --threads default: every core of this machine.
int default_threads();

// For unsigned flags (--seed, --train-limit, ...): CLI11 would wrap "-5" into a huge
// value; refuse any sign. Fails as "--seed: -5 is negative; expected a number >= 0".
CLI::Validator non_negative();

// --dataset NAME: a UsageError unless NAME is one the readers know. Checked before the
// data directory is resolved, which for cifar10 may start a download.
void check_dataset_flag(const std::string& name);

// A checkpoint's "dataset" must be one the readers know before --data is resolved for
// it: otherwise the checkpoint's error would read as a --dataset usage error.
void check_checkpoint_dataset(const std::string& checkpoint, const std::string& dataset);

// --threshold TAU (or another flag that takes one tau): 0 <= tau <= 1.
void check_threshold_flag(const char* flag, double tau);

// --threads N for commands that take it directly (1..kMaxThreads; 0 too where it means
// every core).
void check_threads_flag(int threads, bool zero_is_every_core = false);

}  // namespace mapgate

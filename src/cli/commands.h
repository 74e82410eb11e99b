// Each subcommand registers its options on the CLI11 app and sets `action`, which
// main() runs after parsing. Library errors propagate to main() for the exit code.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace mapgate {

using Action = std::function<void()>;

void add_data_command(CLI::App& app, Action& action);
void add_train_command(CLI::App& app, Action& action);
void add_eval_command(CLI::App& app, Action& action);
void add_flops_command(CLI::App& app, Action& action);
void add_export_command(CLI::App& app, Action& action);
void add_bench_command(CLI::App& app, Action& action);
void add_demo_command(CLI::App& app, Action& action);

// --threads default: every core of this machine.
int default_threads();

}  // namespace mapgate

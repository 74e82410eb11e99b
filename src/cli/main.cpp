// mapgate: input-dependent feature-map pruning for DenseNets. Parses the command line
// and maps outcomes to exit codes: 0 success, 1 runtime error, 2 usage error.
#include <algorithm>
#include <iostream>
#include <thread>

#include <c10/util/Exception.h>

#include "cli/commands.h"
#include "common/allocator.h"
#include "common/error.h"
#include "data/dataset.h"
#include "train/train_config.h"

namespace mapgate {

int default_threads() {
  return std::min(kMaxThreads, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}

CLI::Validator non_negative() {
  return CLI::Validator(
      [](std::string& value) {
        const auto first = value.find_first_not_of(" \t");
        return first != std::string::npos && value[first] == '-'
                   ? value + " is negative; expected a number >= 0"
                   : std::string();
      },
      "", "non-negative");
}

void check_dataset_flag(const std::string& name) {
  std::string expected;
  for (const std::string& n : dataset_names()) {
    if (n == name) return;
    expected += (expected.empty() ? "" : ", ") + n;
  }
  throw UsageError("--dataset " + quoted(name) + ": unknown; expected one of " + expected);
}

void check_checkpoint_dataset(const std::string& checkpoint, const std::string& dataset) {
  try {
    check_dataset_flag(dataset);
  } catch (const UsageError&) {
    throw Error("checkpoint " + quoted(checkpoint) + ": dataset " + quoted(dataset) +
                " is not one this build reads");
  }
}

void check_threshold_flag(const char* flag, double tau) {
  if (!is_valid_threshold(tau))
    throw UsageError(std::string(flag) + " " + std::to_string(tau) + ": expected 0 <= tau <= 1");
}

void check_threads_flag(int threads, bool zero_is_every_core) {
  if (threads < (zero_is_every_core ? 0 : 1) || threads > kMaxThreads)
    throw UsageError("--threads " + std::to_string(threads) + ": expected 1.." + std::to_string(kMaxThreads) +
                     (zero_is_every_core ? " (0: every core)" : ""));
}

namespace {

// CLI11 says only "A subcommand is required" for `mapgate bogus` or `mapgate data bogus`;
// name the word it did not know and the subcommands that exist there.
std::string missing_subcommand_message(CLI::App& app) {
  CLI::App* at = &app;
  std::string where = "mapgate";
  while (!at->get_subcommands().empty()) {
    at = at->get_subcommands().front();
    where += " " + at->get_name();
  }
  std::string expected;
  for (const CLI::App* sub : at->get_subcommands([](const CLI::App*) { return true; }))
    expected += (expected.empty() ? "" : ", ") + sub->get_name();
  const std::vector<std::string> rest = app.remaining(true);
  if (rest.empty())
    return (where == "mapgate" ? "" : where.substr(8) + ": ") + "a subcommand is required; expected one of " +
           expected;
  return quoted(rest.front()) + ": not a subcommand of " + where + "; expected one of " + expected;
}

}  // namespace
}  // namespace mapgate

int main(int argc, char** argv) {
  mapgate::keep_freed_memory_for_reuse();  // large tensors reused, not re-faulted (allocator.h)
  CLI::App app{"mapgate: train gated DenseNets that switch feature maps off per input, "
               "and measure what that saves"};
  app.option_defaults()->always_capture_default();
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Print help for every subcommand");
  mapgate::Action action;
  mapgate::add_data_command(app, action);
  mapgate::add_train_command(app, action);
  mapgate::add_eval_command(app, action);
  mapgate::add_flops_command(app, action);
  mapgate::add_export_command(app, action);
  mapgate::add_bench_command(app, action);
  mapgate::add_infer_command(app, action);
  mapgate::add_demo_command(app, action);
  mapgate::add_upgrade_checkpoint_command(app, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::RequiredError& e) {
    const std::string what = e.what();
    std::cerr << "mapgate: "
              << (what.rfind("A subcommand is required", 0) == 0 ? mapgate::missing_subcommand_message(app) : what)
              << " (see --help)\n";
    return 2;
  } catch (const CLI::ParseError& e) {
    std::cerr << "mapgate: " << e.what() << " (see --help)\n";
    return 2;
  }
  try {
    if (action) action();
    return 0;
  } catch (const mapgate::UsageError& e) {
    std::cerr << "mapgate: " << e.what() << "\n";
    return 2;
  } catch (const mapgate::Error& e) {
    std::cerr << "mapgate: " << e.what() << "\n";
    return 1;
  } catch (const c10::Error& e) {
    const std::string what = e.what();
    std::cerr << "mapgate: LibTorch error: " << what.substr(0, what.find('\n')) << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "mapgate: " << e.what() << "\n";
    return 1;
  }
}

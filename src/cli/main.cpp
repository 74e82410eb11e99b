// mapgate: input-dependent feature-map pruning for DenseNets. Parses the command line
// and maps outcomes to exit codes: 0 success, 1 runtime error, 2 usage error.
#include <iostream>
#include <thread>

#include <c10/util/Exception.h>

#include "cli/commands.h"
#include "common/error.h"

namespace mapgate {
int default_threads() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }
}  // namespace mapgate

int main(int argc, char** argv) {
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
  mapgate::add_demo_command(app, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
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

// `mapgate upgrade-checkpoint`: a format-1 checkpoint (a LibTorch archive, written before
// December 2026) rewritten in format 2 (docs/checkpoint-format.md). The only command that
// reads format 1, whose reader is LibTorch's (it compiles code records a crafted file can
// make crash it): meant for files you trust, such as your own older runs.
#include <cstdio>
#include <filesystem>
#include <optional>

#include "cli/commands.h"
#include "common/dir_lock.h"
#include "common/error.h"
#include "train/checkpoint.h"
#include "train/checkpoint_format1.h"

namespace mapgate {

void add_upgrade_checkpoint_command(CLI::App& app, Action& action) {
  struct UpgradeArgs {
    std::string model, out;
  };
  auto args = std::make_shared<UpgradeArgs>();
  auto* cmd = app.add_subcommand(
      "upgrade-checkpoint",
      "Rewrite a format-1 checkpoint (LibTorch archive) in format 2; only for files you trust");
  cmd->footer(
      "Weights, buffers and the state record are carried over; the optimizers' state is not, so the\n"
      "result serves eval, export, infer and --init, not --resume.\n\n"
      "Examples:\n  mapgate upgrade-checkpoint runs/old          # in place\n"
      "  mapgate upgrade-checkpoint old.pt --out new.pt");
  cmd->add_option("model", args->model, "run directory or format-1 checkpoint file")->required();
  cmd->add_option("--out", args->out, "file to write (default: replace the checkpoint in place, atomically)");
  cmd->callback([args, &action] {
    action = [args] {
      const std::string in = checkpoint_path(args->model);
      const std::string out = args->out.empty() ? in : args->out;
      if (std::filesystem::is_directory(out))
        throw UsageError("--out " + quoted(out) + ": is a directory; expected the checkpoint file to write");
      std::optional<DirLock> lock;  // no trainer may write the run meanwhile
      if (std::filesystem::is_directory(args->model)) lock.emplace(args->model, "upgrade-checkpoint");
      const Format1Checkpoint old = read_format1_checkpoint(in);
      write_checkpoint(out, old.state, old.tensors, {});
      const Checkpoint check(out);  // what every other command will read
      std::printf("wrote %s: format 2, %zu model tensors, epoch %d; optimizer state not carried over "
                  "(--init from it, not --resume)\n",
                  out.c_str(), old.tensors.size(), check.epoch());
    };
  });
}

}  // namespace mapgate

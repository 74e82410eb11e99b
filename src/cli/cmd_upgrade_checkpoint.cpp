// `mapgate upgrade-checkpoint`: a format-1 checkpoint (a LibTorch archive, written before
// December 2026) rewritten in format 2 (docs/checkpoint-format.md). The only command that
// reads format 1, whose reader is LibTorch's (it compiles code records a crafted file can
// make crash it): meant for files you trust, such as your own older runs. A format-2
// checkpoint is rewritten without its optimizers' state (a finished model to ship or --init
// from), read by mapgate's own parser like every other command's.
#include <cstdio>
#include <filesystem>
#include <optional>

#include "cli/commands.h"
#include "common/dir_lock.h"
#include "common/error.h"
#include "common/regular_file.h"
#include "common/write_file.h"
#include "train/checkpoint.h"
#include "train/checkpoint_format1.h"

namespace mapgate {
namespace {

// Format 2 in, format 2 out: the state record and the model's tensors, no optimizer state.
void strip_optimizers(const std::string& in, const std::string& out) {
  const Checkpoint check(in);  // the reader's checks (format, version, state record)
  CheckpointContents contents = check.contents();
  std::size_t dropped = 0;
  for (auto it = contents.tensors.begin(); it != contents.tensors.end();) {
    const bool model = it->first.rfind("model/", 0) == 0;  // the rest: "KEY/I/FIELD" of an optimizer
    dropped += !model;
    it = model ? std::next(it) : contents.tensors.erase(it);
  }
  contents.optimizers.clear();
  const std::string stripped = encode_checkpoint(contents);
  write_file_atomic(out, stripped.data(), stripped.size());
  std::printf("wrote %s: already format 2; %zu model tensors kept, %zu optimizer tensors dropped, epoch %d "
              "(--init from it, not --resume)\n",
              out.c_str(), contents.tensors.size(), dropped, check.epoch());
}

}  // namespace

void add_upgrade_checkpoint_command(CLI::App& app, Action& action) {
  struct UpgradeArgs {
    std::string model, out;
  };
  auto args = std::make_shared<UpgradeArgs>();
  auto* cmd = app.add_subcommand(
      "upgrade-checkpoint",
      "Rewrite a format-1 checkpoint (LibTorch archive) in format 2, only for files you trust; a "
      "format-2 one is rewritten without its optimizers' state");
  cmd->footer(
      "Weights, buffers and the state record are carried over; the optimizers' state is not, so the\n"
      "result serves eval, export, infer and --init, not --resume (a finished model to ship: about\n"
      "half the size of a format-2 checkpoint written by training).\n\n"
      "Examples:\n  mapgate upgrade-checkpoint runs/old          # in place\n"
      "  mapgate upgrade-checkpoint old.pt --out new.pt");
  cmd->add_option("model", args->model, "run directory or checkpoint file")->required();
  cmd->add_option("--out", args->out, "file to write (default: replace the checkpoint in place, atomically)");
  cmd->callback([args, &action] {
    action = [args] {
      const std::string in = checkpoint_path(args->model);
      const std::string out = args->out.empty() ? in : args->out;
      if (std::filesystem::is_directory(out))
        throw UsageError("--out " + quoted(out) + ": is a directory; expected the checkpoint file to write");
      std::optional<DirLock> lock;  // no trainer may write the run meanwhile
      if (std::filesystem::is_directory(args->model)) lock.emplace(args->model, "upgrade-checkpoint");
      if (std::filesystem::exists(in)) {
        const std::string bytes = read_regular_file<std::string>(in, checkpoint_size_limit(), "checkpoint");
        if (!is_format1_checkpoint(bytes)) return strip_optimizers(in, out);
      }
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

// `mapgate export`: a trained model to the engine's weight file (docs/weight-format.md).
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "common/error.h"
#include "train/export.h"

namespace mapgate {

void add_export_command(CLI::App& app, Action& action) {
  struct ExportArgs {
    std::string model, out;
  };
  auto args = std::make_shared<ExportArgs>();
  auto* cmd = app.add_subcommand(
      "export", "Write a trained model as an engine weight file (docs/weight-format.md, version " +
                    std::to_string(kWeightFormatVersion) + ")");
  cmd->footer("Examples:\n  mapgate export --model models/densenet22-gated --out gated.mgw\n  mapgate infer --weights gated.mgw   # then run it on the engine alone");
  cmd->add_option("--model", args->model, "run directory or checkpoint file")->required();
  cmd->add_option("--out", args->out, "weight file to write")->required();
  cmd->callback([args, &action] {
    action = [args] {
      if (std::filesystem::is_directory(args->out))
        throw UsageError("--out " + quoted(args->out) + ": is a directory; expected the weight file to write");
      const Weights w = export_model(args->model, args->out);
      std::error_code ec;
      const auto bytes = std::filesystem::file_size(args->out, ec);
      std::printf("wrote %s: DenseNet-%d%s k=%d, %s, %zu tensors, %lld bytes\n", args->out.c_str(),
                  w.config.depth, w.config.bc ? "-BC" : "", w.config.growth,
                  w.config.gated ? "gated" : "no gates", w.tensors.size(),
                  ec ? -1LL : static_cast<long long>(bytes));
    };
  });
}

}  // namespace mapgate

// The probes' shared command line; see probe_program.h.
#include "probe_program.h"

#include <iostream>

#include <torch/torch.h>

#include "common/write_file.h"
#include "data/data_dir.h"

namespace mapgate {

void add_probe_flags(CLI::App& app, ProbeFlags& flags, const std::string& model_help) {
  app.add_option("--model", flags.model, model_help)->required();
  app.add_option("--data", flags.data, "dataset directory (default: $MAPGATE_DATA)");
  app.add_option("--test-limit", flags.test_limit, "first N test images (0: all)");
  app.add_option("--threads", flags.threads, "LibTorch threads");
  app.add_option("--json", flags.json_out, "also write the result to this file");
}

Dataset probe_test_split(const ProbeFlags& flags, const std::string& dataset) {
  torch::set_num_threads(flags.threads);
  const std::string dir = resolve_data_dir(flags.data, dataset, [](const std::string& l) { std::cerr << l << "\n"; });
  return load_test_split(dataset, dir).head(flags.test_limit);
}

torch::Tensor probe_images(const Dataset& test, std::size_t first, std::size_t count, const Normalization& norm) {
  const auto n = static_cast<std::int64_t>(count), floats = static_cast<std::int64_t>(test.image_bytes());
  auto x = torch::empty({n, test.channels, test.height, test.width});
  for (std::int64_t i = 0; i < n; ++i)
    prepare_image(test, first + static_cast<std::size_t>(i), norm, 0, 0, false, x.data_ptr<float>() + i * floats);
  return x;
}

void write_probe_json(const ProbeFlags& flags, const nlohmann::json& result) {
  if (flags.json_out.empty()) return;
  const std::string text = result.dump(2) + "\n";
  write_file_atomic(flags.json_out, text.data(), text.size());
}

int run_probe(const char* program, const std::function<void()>& body) {
  try {
    body();
    return 0;
  } catch (const std::exception& e) {
    std::cerr << program << ": " << e.what() << "\n";
    return 1;
  }
}

}  // namespace mapgate

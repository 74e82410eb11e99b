// `mapgate data verify|fetch`: check a dataset directory, or download CIFAR-10.
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "common/error.h"
#include "data/checksums.h"
#include "data/data_dir.h"
#include "data/fetch.h"

#include <nlohmann/json.hpp>

namespace mapgate {
namespace {

struct DataArgs {
  std::string dataset = "cifar10";
  std::string dir;
  bool json = false;
};

void log_line(const std::string& line) { std::cerr << line << "\n"; }

void verify(const DataArgs& args) {
  check_dataset_flag(args.dataset);
  const std::string dir = resolve_data_dir(args.dir, args.dataset, log_line);
  const VerifyReport r = verify_dataset(args.dataset, dir);
  if (args.json) {
    nlohmann::json files = nlohmann::json::array();
    for (const auto& f : r.files)
      files.push_back({{"name", f.name}, {"path", f.path}, {"sha256", f.sha256}, {"matches", f.matches}});
    nlohmann::json j = {{"dataset", r.dataset},
                        {"data", dir},
                        {"train", r.train},
                        {"test", r.test},
                        {"classes", r.classes},
                        {"class_names", r.class_names},
                        {"train_per_class", r.train_per_class},
                        {"test_per_class", r.test_per_class},
                        {"files", files},
                        {"checksums_match", nullptr}};
    if (r.checksums_match) j["checksums_match"] = *r.checksums_match;
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::printf("%s in %s: %zu training and %zu test images, %d classes\n", r.dataset.c_str(),
              dir.c_str(), r.train, r.test, r.classes);
  std::printf("%-14s %8s %8s\n", "class", "train", "test");
  for (int c = 0; c < r.classes; ++c)
    std::printf("%-14s %8zu %8zu\n", r.class_names[c].c_str(), r.train_per_class[c], r.test_per_class[c]);
  for (const auto& f : r.files)
    std::printf("%-18s sha256 %s %s\n", f.name.c_str(), f.sha256.c_str(),
                f.matches ? "matches the official file" : "DIFFERS from the official file");
  if (!r.checksums_match)
    std::printf("checksums: no official checksums known for %s\n", r.dataset.c_str());
  else
    std::printf("checksums: %s\n", *r.checksums_match ? "all match" : "MISMATCH");
}

void fetch(const DataArgs& args) {
  if (args.dataset != "cifar10")
    throw UsageError("--dataset " + quoted(args.dataset) +
                     ": fetch supports cifar10 only (Fashion-MNIST comes with Debian's "
                     "dataset-fashion-mnist package)");
  const std::string dir = args.dir.empty() ? default_data_dir(args.dataset) : args.dir;
  fetch_cifar10(dir, log_line);
  std::cout << "CIFAR-10 is in " << dir << " (checksums match the official files)\n";
}

}  // namespace

void add_data_command(CLI::App& app, Action& action) {
  auto* data = app.add_subcommand("data", "Verify or fetch a dataset");
  data->require_subcommand(1);
  data->footer("Examples:\n  mapgate data fetch --dataset cifar10\n  mapgate data verify --dataset cifar10 --data $MAPGATE_DATA --json");

  auto verify_args = std::make_shared<DataArgs>();
  auto* v = data->add_subcommand("verify", "Count images per split and class; check official checksums");
  v->footer("Examples:\n  mapgate data verify --dataset cifar10 --data $MAPGATE_DATA\n  mapgate data verify --dataset fashion-mnist --data /usr/share/datasets/fashion-mnist");
  v->add_option("--dataset", verify_args->dataset, "cifar10, cifar100, mnist or fashion-mnist");
  v->add_option("--data", verify_args->dir, "dataset directory (default: $MAPGATE_DATA or the per-user cache)");
  v->add_flag("--json", verify_args->json, "print JSON");
  v->callback([verify_args, &action] { action = [verify_args] { verify(*verify_args); }; });

  auto fetch_args = std::make_shared<DataArgs>();
  auto* f = data->add_subcommand("fetch", "Download CIFAR-10 and check it against the official checksums");
  f->footer("Examples:\n  mapgate data fetch --dataset cifar10 --data ~/cifar10");
  f->add_option("--dataset", fetch_args->dataset, "dataset to fetch (cifar10)");
  f->add_option("--data", fetch_args->dir, "target directory (default: $MAPGATE_DATA or the per-user cache)");
  f->callback([fetch_args, &action] { action = [fetch_args] { fetch(*fetch_args); }; });
}

}  // namespace mapgate

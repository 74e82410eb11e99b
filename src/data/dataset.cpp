// Dataset helpers and the --dataset dispatch to the CIFAR and IDX readers.
// Must match dataset.h: unknown names are a UsageError listing dataset_names().
#include "data/dataset.h"

#include <algorithm>

#include "common/error.h"
#include "data/cifar.h"
#include "data/idx.h"

namespace mapgate {

Dataset Dataset::head(std::size_t n) const {
  if (n == 0 || n >= size()) return *this;
  Dataset d;
  d.name = name;
  d.channels = channels;
  d.height = height;
  d.width = width;
  d.num_classes = num_classes;
  d.class_names = class_names;
  d.labels.assign(labels.begin(), labels.begin() + static_cast<std::ptrdiff_t>(n));
  d.images.assign(images.begin(), images.begin() + static_cast<std::ptrdiff_t>(n * image_bytes()));
  return d;
}

const std::vector<std::string>& dataset_names() {
  static const std::vector<std::string> names = {"cifar10", "cifar100", "mnist", "fashion-mnist"};
  return names;
}

DatasetSplits load_dataset(const std::string& name, const std::string& dir, Splits which) {
  if (name == "cifar10") return load_cifar10(dir, nullptr, which);
  if (name == "cifar100") return load_cifar100(dir, nullptr, which);
  if (name == "mnist" || name == "fashion-mnist") return load_idx_dataset(name, dir, which);
  std::string expected;
  for (const std::string& n : dataset_names()) expected += (expected.empty() ? "" : ", ") + n;
  throw UsageError("--dataset " + quoted(name) + ": unknown; expected one of " + expected);
}

Dataset load_test_split(const std::string& name, const std::string& dir) {
  return load_dataset(name, dir, Splits::kTestOnly).test;
}

}  // namespace mapgate

// Reading a run directory in tests: its metrics.jsonl lines, and a bit-exact comparison
// of two runs' checkpoints.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "train/trained_model.h"
#include "train/trainer.h"

namespace mapgate::test {

inline std::vector<nlohmann::json> read_metrics(const std::string& run) {
  std::ifstream in(std::filesystem::path(run) / kMetricsFile);
  std::vector<nlohmann::json> lines;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

// Empty if both runs' checkpoints hold bit-identical parameters and buffers, else the
// name of the first tensor that differs.
inline std::string first_difference(const std::string& run_a, const std::string& run_b) {
  TrainedModel a = load_trained_model(run_a), b = load_trained_model(run_b);
  const auto pa = a.model->named_parameters(), pb = b.model->named_parameters();
  const auto ba = a.model->named_buffers(), bb = b.model->named_buffers();
  if (pa.size() != pb.size() || ba.size() != bb.size()) return "different number of tensors";
  for (const auto& p : pa)
    if (!pb.contains(p.key()) || !torch::equal(p.value(), pb[p.key()])) return p.key();
  for (const auto& t : ba)
    if (!bb.contains(t.key()) || !torch::equal(t.value(), bb[t.key()])) return t.key();
  return "";
}

}  // namespace mapgate::test

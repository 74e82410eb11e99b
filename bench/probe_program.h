// The command line the research probes share (gate_input_probe.cpp, early_exit_probe.cpp):
// --model, --data, --test-limit, --threads and --json, the test split they read, the JSON
// file they write, and an error as one line with exit status 1.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <torch/types.h>

#include "data/dataset.h"
#include "data/loader.h"

namespace mapgate {

struct ProbeFlags {
  std::string model, data, json_out;
  std::size_t test_limit = 0;  // 0: every test image
  int threads = 2;
};

void add_probe_flags(CLI::App& app, ProbeFlags& flags, const std::string& model_help);
// Sets the LibTorch threads; the first --test-limit test images of `dataset` from --data
// (default $MAPGATE_DATA).
Dataset probe_test_split(const ProbeFlags& flags, const std::string& dataset);
// Test images [first, first + count) normalised as a network takes them: (count, C, H, W).
torch::Tensor probe_images(const Dataset& test, std::size_t first, std::size_t count, const Normalization& norm);
// `result` into --json's file, when one was given.
void write_probe_json(const ProbeFlags& flags, const nlohmann::json& result);
// Runs `body`; an exception becomes "PROGRAM: WHAT" on stderr and exit status 1.
int run_probe(const char* program, const std::function<void()>& body);

}  // namespace mapgate

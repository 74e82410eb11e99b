// `mapgate demo` without --train: the shipped dense and gated models side by side on the
// test split, through the engine (docs/method.md; README "Set-up").
#pragma once

#include <cstddef>
#include <string>

#include "train/trained_model.h"

namespace mapgate {

struct GatingDemoArgs {
  std::string data;                                    // --data ("": $MAPGATE_DATA or the cache)
  std::string dense = "models/densenet22-cifar10";     // the dense reference run
  std::string gated = "models/densenet22-gated";       // the gated run
  std::size_t test_limit = 0;                          // 0: every test image
  std::size_t timed_images = 2000;                     // images per timed engine pass
  std::string out = "mapgate-demo";                    // evaluation JSON and pictures go here
  int threads = 1;
};

// Shows `dense` and `gated` (the runs of args.dense and args.gated, loaded by load_demo_run
// before anything was written) and writes the evaluations and pictures to args.out.
void run_gating_demo(const GatingDemoArgs& args, TrainedModel& dense, TrainedModel& gated);

// The run behind --dense or --gated (`flag`), checked to exist, to be (un)gated as
// `gated` says, and to hold the dataset it names; UsageError naming the flag otherwise.
TrainedModel load_demo_run(const std::string& flag, const std::string& path, bool gated);

}  // namespace mapgate

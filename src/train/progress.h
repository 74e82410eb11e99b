// The live progress line of `mapgate train`: rewritten in place on a terminal,
// printed every `interval` seconds otherwise (logs, CI).
#pragma once

#include <chrono>
#include <ostream>
#include <string>

namespace mapgate {

struct StepStats {
  int epoch = 0, epochs = 0;          // 1-based epoch for display
  std::size_t step = 0, steps = 0;    // steps done in this epoch
  double images_per_s = 0;
  double data_wait_s = 0;             // time the step waited for the loader this epoch
  double elapsed_s = 0;               // this epoch
  double loss = 0, accuracy = 0;      // running means over the epoch
  double eta_s = 0;                   // whole run
  bool gated = false;                 // gated runs add (running means over the epoch):
  double kept = 0;                    // fraction of gated maps on
  double macs = 0;                    // exact MACs per example under the sampled masks
  double reward = 0;                  // mean REINFORCE reward
  double entropy = 0;                 // gate-policy entropy per map, nats
};

std::string format_duration(double seconds);   // "1:02:03" or "2:03"
std::string format_step(const StepStats& s);

class ProgressLine {
 public:
  ProgressLine(std::ostream* out, bool terminal, double interval_s = 30);
  void update(const StepStats& s);              // throttled
  void finish(const std::string& summary);      // ends the line, prints summary

 private:
  std::ostream* out_;
  bool terminal_;
  double interval_s_;
  std::chrono::steady_clock::time_point last_{};
  bool pending_ = false;
};

}  // namespace mapgate

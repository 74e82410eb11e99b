// RUN/, the directory a training run owns: checked against --resume, locked for the run's
// life, and the three files it keeps there (config.json, metrics.jsonl: one JSON line
// per epoch, checkpoint.pt), each replaced atomically or appended line by line.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/dir_lock.h"

namespace mapgate {

inline constexpr const char* kConfigFile = "config.json";
inline constexpr const char* kMetricsFile = "metrics.jsonl";

class RunDir {
 public:
  // `resume`: RUN must hold a checkpoint (Error otherwise); else it must not (UsageError
  // naming --out). Creates RUN, locks it (before anything there is written or removed)
  // and removes the temporaries a killed run's atomic writes left (NAME.tmp.PID).
  RunDir(const std::string& dir, bool resume);

  const std::string& path() const { return dir_; }
  std::string checkpoint_file() const;
  std::string metrics_file() const;

  void write_config(const nlohmann::json& config) const;
  void clear_metrics() const;                             // a fresh run starts empty
  void append_metrics(const nlohmann::json& epoch) const;
  // Keeps only the lines of epochs <= epochs_done (a run killed between writing its
  // metrics line and its checkpoint would otherwise repeat an epoch after --resume).
  void trim_metrics(int epochs_done) const;

 private:
  std::string dir_;
  DirLock lock_;
};

}  // namespace mapgate

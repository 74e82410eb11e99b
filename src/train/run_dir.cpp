// RunDir; see run_dir.h.
#include "train/run_dir.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "common/regular_file.h"
#include "common/write_file.h"
#include "train/checkpoint.h"

namespace mapgate {
namespace fs = std::filesystem;
namespace {

// Checks --out against --resume and creates it; the caller locks it next.
const std::string& checked_run_dir(const std::string& dir, bool resume) {
  const fs::path checkpoint = fs::path(dir) / kCheckpointFile;
  const bool has_run = fs::exists(checkpoint);
  if (resume && !has_run) throw Error("--resume: " + quoted(checkpoint.string()) + " not found; nothing to resume");
  if (!resume && has_run)
    throw UsageError("--out " + quoted(dir) +
                     ": already holds a run (checkpoint.pt); pass --resume to continue it or "
                     "choose another directory");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error("--out " + quoted(dir) + ": cannot create directory (" + ec.message() + ")");
  if (::access(dir.c_str(), W_OK) != 0) throw Error("--out " + quoted(dir) + ": directory is not writable");
  return dir;
}

}  // namespace

RunDir::RunDir(const std::string& dir, bool resume) : dir_(dir), lock_(checked_run_dir(dir, resume), "--out") {
  // Temporaries of a killed run's atomic writes are garbage: the file they were meant
  // to replace is intact.
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    for (const char* file : {kCheckpointFile, kConfigFile, kMetricsFile})
      if (name.rfind(std::string(file) + ".tmp.", 0) == 0) fs::remove(entry.path(), ec);
  }
}

std::string RunDir::checkpoint_file() const { return (fs::path(dir_) / kCheckpointFile).string(); }
std::string RunDir::metrics_file() const { return (fs::path(dir_) / kMetricsFile).string(); }

void RunDir::write_config(const nlohmann::json& config) const {
  const std::string text = config.dump(2) + "\n";
  write_file_atomic((fs::path(dir_) / kConfigFile).string(), text.data(), text.size());
}

void RunDir::clear_metrics() const { std::ofstream(metrics_file(), std::ios::trunc); }

void RunDir::append_metrics(const nlohmann::json& epoch) const {
  std::ofstream out(metrics_file(), std::ios::app);
  out << epoch.dump() << "\n";
  out.flush();
  if (!out) throw Error("metrics " + quoted(metrics_file()) + ": cannot append");
}

void RunDir::trim_metrics(int epochs_done) const {
  const std::string path = metrics_file();
  std::error_code ec;
  if (!fs::exists(path, ec)) return;  // no metrics yet
  // A regular file only (a FIFO would block, /dev/zero never end), of bounded size.
  const SizeLimit limit{std::uint64_t{1} << 28, "a metrics file may take (256 KiB per line for 1000 epochs)"};
  std::istringstream in(read_regular_file<std::string>(path, limit, "metrics"));
  std::string kept, line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      if (nlohmann::json::parse(line).value("epoch", 0) <= epochs_done) kept += line + "\n";
    } catch (const nlohmann::json::exception&) {
      // A torn last line from a killed run: drop it.
    }
  }
  write_file_atomic(path, kept.data(), kept.size());
}

}  // namespace mapgate

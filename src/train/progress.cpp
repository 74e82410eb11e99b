// Progress line formatting and throttling.
#include "train/progress.h"

#include <cstdio>

namespace mapgate {

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e8) return "?";
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

std::string format_step(const StepStats& s) {
  char buf[256];
  const double wait_pct = s.elapsed_s > 0 ? 100 * s.data_wait_s / s.elapsed_s : 0;
  std::snprintf(buf, sizeof buf,
                "epoch %d/%d step %zu/%zu | %.0f img/s | data wait %.1fs (%.1f%%) | "
                "loss %.4f acc %.4f | ETA %s",
                s.epoch, s.epochs, s.step, s.steps, s.images_per_s, s.data_wait_s, wait_pct,
                s.loss, s.accuracy, format_duration(s.eta_s).c_str());
  if (!s.gated) return buf;
  char gates[128];
  std::snprintf(gates, sizeof gates, " | kept %.3f MACs %.1fM reward %.4f H %.3f", s.kept,
                s.macs / 1e6, s.reward, s.entropy);
  return std::string(buf) + gates;
}

ProgressLine::ProgressLine(std::ostream* out, bool terminal, double interval_s)
    : out_(out), terminal_(terminal), interval_s_(terminal ? 0.5 : interval_s) {}

void ProgressLine::update(const StepStats& s) {
  if (!out_) return;
  const auto now = std::chrono::steady_clock::now();
  const bool last_step = s.step == s.steps;
  if (!last_step && std::chrono::duration<double>(now - last_).count() < interval_s_) return;
  last_ = now;
  if (terminal_) {
    *out_ << "\r\033[K" << format_step(s) << std::flush;
    pending_ = true;
  } else {
    *out_ << format_step(s) << "\n" << std::flush;
  }
}

void ProgressLine::finish(const std::string& summary) {
  if (!out_) return;
  if (pending_) *out_ << "\n";
  pending_ = false;
  *out_ << summary << "\n" << std::flush;
}

}  // namespace mapgate

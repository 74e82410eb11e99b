// AutocastScope over the two forms of LibTorch's C++ autocast API: per device type since
// 2.4 (set_autocast_enabled(type, on)), separate CPU and CUDA functions before (Debian's
// 1.13; deprecated since 2.4).
#include "train/autocast_scope.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

namespace mapgate {
namespace {

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
bool autocast_enabled(torch::DeviceType t) { return at::autocast::is_autocast_enabled(t); }
void set_autocast_enabled(torch::DeviceType t, bool on) { at::autocast::set_autocast_enabled(t, on); }
torch::ScalarType autocast_dtype(torch::DeviceType t) { return at::autocast::get_autocast_dtype(t); }
void set_autocast_dtype(torch::DeviceType t, torch::ScalarType d) { at::autocast::set_autocast_dtype(t, d); }
#else
bool autocast_enabled(torch::DeviceType t) {
  return t == torch::kCPU ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled();
}
void set_autocast_enabled(torch::DeviceType t, bool on) {
  if (t == torch::kCPU)
    at::autocast::set_cpu_enabled(on);
  else
    at::autocast::set_enabled(on);
}
torch::ScalarType autocast_dtype(torch::DeviceType t) {
  return t == torch::kCPU ? at::autocast::get_autocast_cpu_dtype() : at::autocast::get_autocast_gpu_dtype();
}
void set_autocast_dtype(torch::DeviceType t, torch::ScalarType d) {
  if (t == torch::kCPU)
    at::autocast::set_autocast_cpu_dtype(d);
  else
    at::autocast::set_autocast_gpu_dtype(d);
}
#endif

}  // namespace

AutocastScope::AutocastScope(torch::Device device, bool enabled) : enabled_(enabled), type_(device.type()) {
  if (!enabled_) return;
  was_enabled_ = autocast_enabled(type_);
  was_dtype_ = autocast_dtype(type_);
  set_autocast_enabled(type_, true);
  set_autocast_dtype(type_, torch::kBFloat16);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!enabled_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_autocast_enabled(type_, was_enabled_);
  set_autocast_dtype(type_, was_dtype_);
}

}  // namespace mapgate

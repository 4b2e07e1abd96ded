#include "train/precision.h"

#include <ATen/autocast_mode.h>

namespace sparser::train {

namespace autocast = at::autocast;

// LibTorch 2.4 replaced the per-device functions with ones taking the device type.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
namespace {
bool is_enabled(torch::DeviceType d) { return autocast::is_autocast_enabled(d); }
void set_enabled(torch::DeviceType d, bool on) { autocast::set_autocast_enabled(d, on); }
torch::ScalarType get_dtype(torch::DeviceType d) { return autocast::get_autocast_dtype(d); }
void set_dtype(torch::DeviceType d, torch::ScalarType t) { autocast::set_autocast_dtype(d, t); }
}  // namespace
#else
namespace {
bool is_cpu(torch::DeviceType d) { return d == torch::kCPU; }
bool is_enabled(torch::DeviceType d) { return is_cpu(d) ? autocast::is_cpu_enabled() : autocast::is_enabled(); }
void set_enabled(torch::DeviceType d, bool on) { is_cpu(d) ? autocast::set_cpu_enabled(on) : autocast::set_enabled(on); }
torch::ScalarType get_dtype(torch::DeviceType d) {
  return is_cpu(d) ? autocast::get_autocast_cpu_dtype() : autocast::get_autocast_gpu_dtype();
}
void set_dtype(torch::DeviceType d, torch::ScalarType t) {
  is_cpu(d) ? autocast::set_autocast_cpu_dtype(t) : autocast::set_autocast_gpu_dtype(t);
}
}  // namespace
#endif

AutocastScope::AutocastScope(torch::Device device, bool enabled) : enabled_(enabled), device_type_(device.type()) {
  if (!enabled_) return;
  was_enabled_ = is_enabled(device_type_);
  previous_dtype_ = get_dtype(device_type_);
  set_enabled(device_type_, true);
  set_dtype(device_type_, torch::kBFloat16);
  autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!enabled_) return;
  // As torch.autocast's __exit__: the cast weights are dropped when the outermost scope ends.
  if (autocast::decrement_nesting() == 0) autocast::clear_cache();
  set_enabled(device_type_, was_enabled_);
  set_dtype(device_type_, previous_dtype_);
}

}  // namespace sparser::train

#pragma once
// train.precision = "bf16": the image encoder's forward passes run under autocast on the
// run's device (CUDA, or CPU where oneDNN has bfloat16 kernels), as
// torch.autocast(dtype=bfloat16) would; the decoder (train::decode_low_res), parameters,
// optimiser state, losses and metrics stay float32.
#include <torch/torch.h>

namespace sparser::train {

class AutocastScope {
 public:
  // Does nothing when `enabled` is false.
  AutocastScope(torch::Device device, bool enabled);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool enabled_;
  torch::DeviceType device_type_;
  bool was_enabled_ = false;
  torch::ScalarType previous_dtype_ = torch::kFloat;
};

}  // namespace sparser::train

#include "model/hooked_layers.h"

#include <cmath>

#include "model/shifted_conv2d.h"

namespace sparser::model {

void HookedLayer::attach(std::shared_ptr<LayerHook> hook) {
  TORCH_CHECK(!hook_, "layer already has a fine-tuning hook (", hook_->name(), ")");
  register_module(hook->name(), hook->module());
  hook_ = std::move(hook);
}

namespace {
// PyTorch's default initialisation (kaiming_uniform with a = sqrt(5)); checkpoints
// overwrite it, but a model built without one must still be well scaled.
void default_init(torch::Tensor& weight, torch::Tensor& bias, int64_t fan_in) {
  torch::NoGradGuard no_grad;
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  weight.uniform_(-bound, bound);
  if (bias.defined()) bias.uniform_(-bound, bound);
}
}  // namespace

LinearImpl::LinearImpl(int64_t in, int64_t out, bool with_bias) : in_features(in), out_features(out) {
  weight = register_parameter("weight", torch::empty({out, in}));
  if (with_bias) bias = register_parameter("bias", torch::empty({out}));
  default_init(weight, bias, in);
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  return finish(x, torch::nn::functional::linear(x, effective_weight(), bias));
}

Conv2dImpl::Conv2dImpl(int64_t in, int64_t out, int64_t k, int64_t stride_, int64_t padding_, bool with_bias)
    : stride(stride_), padding(padding_) {
  weight = register_parameter("weight", torch::empty({out, in, k, k}));
  if (with_bias) bias = register_parameter("bias", torch::empty({out}));
  default_init(weight, bias, in * k * k);
}

torch::Tensor Conv2dImpl::forward(const torch::Tensor& x) {
  const auto w = effective_weight();
  if (shifted_conv2d_applies(x, w, stride, padding)) return finish(x, shifted_conv2d(x, w, bias));
  return finish(x, torch::conv2d(x, w, bias, {stride, stride}, {padding, padding}));
}

}  // namespace sparser::model

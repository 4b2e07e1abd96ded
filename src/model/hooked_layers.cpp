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

std::optional<WeightFactors> HookedLayer::cheaper_factors(const torch::Tensor& input) {
  if (!hook_) return std::nullopt;
  auto factors = hook_->weight_factors();  // none without autograd (the hook decides)
  if (!factors) return std::nullopt;
  // Multiply-adds per output position: the forward, then each gradient the backward needs.
  const double out = factors->left.size(0), rank = factors->left.size(1), in = factors->right.size(1);
  const bool input_grad = input.requires_grad(), left_grad = factors->left.requires_grad(),
             right_grad = factors->right.requires_grad();
  const double whole = out * in * (1 + (left_grad || right_grad) + input_grad);
  const double factored =
      rank * in * (1 + right_grad + input_grad) + out * rank * (1 + left_grad + (right_grad || input_grad));
  if (factored < whole) return factors;
  return std::nullopt;
}

LinearImpl::LinearImpl(int64_t in, int64_t out, bool with_bias) : in_features(in), out_features(out) {
  weight = register_parameter("weight", torch::empty({out, in}));
  if (with_bias) bias = register_parameter("bias", torch::empty({out}));
  default_init(weight, bias, in);
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  namespace F = torch::nn::functional;
  if (const auto factors = cheaper_factors(x))
    return finish(x, F::linear(F::linear(x, factors->right), factors->left, bias));
  return finish(x, F::linear(x, effective_weight(), bias));
}

Conv2dImpl::Conv2dImpl(int64_t in, int64_t out, int64_t k, int64_t stride_, int64_t padding_, bool with_bias)
    : stride(stride_), padding(padding_) {
  weight = register_parameter("weight", torch::empty({out, in, k, k}));
  if (with_bias) bias = register_parameter("bias", torch::empty({out}));
  default_init(weight, bias, in * k * k);
}

namespace {
torch::Tensor convolve(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& bias, int64_t stride,
                       int64_t padding) {
  if (shifted_conv2d_applies(x, w, stride, padding)) return shifted_conv2d(x, w, bias);
  return torch::conv2d(x, w, bias, {stride, stride}, {padding, padding});
}
}  // namespace

torch::Tensor Conv2dImpl::forward(const torch::Tensor& x) {
  if (const auto factors = cheaper_factors(x)) {
    // The right factor as a kernel of `rank` output channels, then the left one as 1×1.
    const auto& [left, right] = *factors;
    const auto projected = convolve(x, right.reshape({right.size(0), weight.size(1), weight.size(2), weight.size(3)}),
                                    torch::Tensor(), stride, padding);
    return finish(x, convolve(projected, left.reshape({left.size(0), left.size(1), 1, 1}), bias, 1, 0));
  }
  return finish(x, convolve(x, effective_weight(), bias, stride, padding));
}

}  // namespace sparser::model

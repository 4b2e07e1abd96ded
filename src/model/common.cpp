#include "model/common.h"

#include <cmath>

namespace sparser::model {

namespace {
// Exact GELU whose backward always sees a contiguous gradient. Debian's LibTorch 1.13
// computes float32 gelu_backward wrongly when the incoming gradient is not contiguous
// (e.g. a transposed one from a matrix product); tests/torch/model_test.cpp checks it.
struct Gelu : torch::autograd::Function<Gelu> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x) {
    ctx->save_for_backward({x});
    return torch::gelu(x);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    return {torch::gelu_backward(grads[0].contiguous(), ctx->get_saved_variables()[0])};
  }
};
}  // namespace

torch::Tensor activate(const torch::Tensor& x, Activation act) {
  if (act == Activation::ReLU) return torch::relu(x);
  return x.requires_grad() && torch::GradMode::is_enabled() ? Gelu::apply(x) : torch::gelu(x);
}

MLPBlockImpl::MLPBlockImpl(int64_t embedding_dim, int64_t mlp_dim, Activation act_) : act(act_) {
  lin1 = register_module("lin1", Linear(embedding_dim, mlp_dim));
  lin2 = register_module("lin2", Linear(mlp_dim, embedding_dim));
}

torch::Tensor MLPBlockImpl::forward(const torch::Tensor& x) { return lin2(activate(lin1(x), act)); }

LayerNorm2dImpl::LayerNorm2dImpl(int64_t num_channels, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({num_channels}));
  bias = register_parameter("bias", torch::zeros({num_channels}));
}

torch::Tensor LayerNorm2dImpl::forward(const torch::Tensor& x) {
  // The official formula, as LibTorch's fused layer_norm over the channels of the
  // channels-last view: one pass each way instead of some ten elementwise ones. The
  // result is NCHW-shaped with channels-last strides; convolutions take it as it is.
  const auto channels_last = x.permute({0, 2, 3, 1});
  const auto input = x.scalar_type() == weight.scalar_type() ? channels_last : channels_last.to(weight.scalar_type());
  return torch::layer_norm(input, {x.size(1)}, weight, bias, eps).permute({0, 3, 1, 2});
}

PatchConvTranspose2dImpl::PatchConvTranspose2dImpl(int64_t in, int64_t out, int64_t k) : kernel_size(k) {
  weight = register_parameter("weight", torch::empty({in, out, k, k}));
  bias = register_parameter("bias", torch::empty({out}));
  // PyTorch's default for ConvTranspose2d: its fan-in is weight.size(1)·k·k.
  torch::NoGradGuard no_grad;
  const double bound = 1.0 / std::sqrt(static_cast<double>(out * k * k));
  weight.uniform_(-bound, bound);
  bias.uniform_(-bound, bound);
}

torch::Tensor PatchConvTranspose2dImpl::forward(const torch::Tensor& x) {
  const auto B = x.size(0), N = x.size(1), k = kernel_size, out = weight.size(1);
  // Columns ordered (dy, dx, out channel); the bias repeats once per patch position.
  const auto columns = weight.permute({0, 2, 3, 1}).reshape({weight.size(0), k * k * out});
  return torch::addmm(bias.repeat({k * k}), x.reshape({B * N, x.size(2)}), columns).view({B, N * k * k, out});
}

}  // namespace sparser::model

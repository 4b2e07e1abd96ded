#include "model/common.h"

namespace sparser::model {

torch::Tensor activate(const torch::Tensor& x, Activation act) {
  return act == Activation::GELU ? torch::gelu(x) : torch::relu(x);
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
  auto u = x.mean(1, /*keepdim=*/true);
  auto s = (x - u).pow(2).mean(1, /*keepdim=*/true);
  auto y = (x - u) / torch::sqrt(s + eps);
  return weight.view({-1, 1, 1}) * y + bias.view({-1, 1, 1});
}

}  // namespace sparser::model

#pragma once
// Small building blocks shared by the encoder and decoder (official: common.py).
#include <torch/torch.h>

#include "model/hooked_layers.h"

namespace sparser::model {

enum class Activation { GELU, ReLU };
torch::Tensor activate(const torch::Tensor& x, Activation act);

// Two Linear layers with an activation between them: lin2(act(lin1(x))).
class MLPBlockImpl : public torch::nn::Module {
 public:
  MLPBlockImpl(int64_t embedding_dim, int64_t mlp_dim, Activation act);
  torch::Tensor forward(const torch::Tensor& x);
  Linear lin1{nullptr}, lin2{nullptr};
  Activation act;
};
TORCH_MODULE(MLPBlock);

// nn.LayerNorm over the last dimension, normalising in its parameters' precision: under
// bfloat16 autocast its input is cast up, as autocast's float32 policy for layer_norm
// does on CUDA (LibTorch 1.13's CPU autocast lacks that policy and fails instead).
class LayerNormImpl : public torch::nn::LayerNormImpl {
 public:
  LayerNormImpl(int64_t dim, double eps) : torch::nn::LayerNormImpl(torch::nn::LayerNormOptions({dim}).eps(eps)) {}
  torch::Tensor forward(const torch::Tensor& x) {
    return torch::nn::LayerNormImpl::forward(x.scalar_type() == weight.scalar_type() ? x : x.to(weight.scalar_type()));
  }
};
TORCH_MODULE(LayerNorm);

// LayerNorm over the channel dimension of an NCHW tensor.
class LayerNorm2dImpl : public torch::nn::Module {
 public:
  explicit LayerNorm2dImpl(int64_t num_channels, double eps = 1e-6);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;
  double eps;
};
TORCH_MODULE(LayerNorm2d);

// A transposed convolution whose kernel equals its stride (no overlap, no padding), on
// channels-last pixels: each input pixel becomes its own k×k output patch, so the layer
// is one matrix product instead of LibTorch's generic (slow on CPU) transposed
// convolution. Parameters as nn.ConvTranspose2d: weight in×out×k×k, bias out.
class PatchConvTranspose2dImpl : public torch::nn::Module {
 public:
  PatchConvTranspose2dImpl(int64_t in_channels, int64_t out_channels, int64_t kernel_size);
  // B×N×in pixels → B×(N·k·k)×out in patch order: output pixel n·k·k + dy·k + dx is
  // offset (dy, dx) in input pixel n's patch. Per-pixel layers can follow as they are;
  // the spatial order is restored once, on whatever is smallest (see MaskDecoder).
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;
  int64_t kernel_size;
};
TORCH_MODULE(PatchConvTranspose2d);

// Elementwise activation as a module, so Sequential indices match the official ones.
class ActivationLayerImpl : public torch::nn::Module {
 public:
  explicit ActivationLayerImpl(Activation act) : act(act) {}
  torch::Tensor forward(const torch::Tensor& x) { return activate(x, act); }
  Activation act;
};
TORCH_MODULE(ActivationLayer);

}  // namespace sparser::model

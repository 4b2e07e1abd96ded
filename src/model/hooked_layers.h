#pragma once
// Linear and Conv2d layers with the official parameter names (`weight`, `bias`)
// that a fine-tuning method can attach a LayerHook to.
#include <torch/torch.h>

#include "model/layer_hook.h"

namespace sparser::model {

class HookedLayer : public torch::nn::Module {
 public:
  // Attaches `hook` and registers its tensors under this layer. One hook per layer.
  void attach(std::shared_ptr<LayerHook> hook);
  const std::shared_ptr<LayerHook>& hook() const { return hook_; }
  // The weight the next forward pass will use (the hooked one, if any).
  torch::Tensor effective_weight() { return hook_ ? hook_->weight(weight) : weight; }
  // The hook's weight factors when multiplying `input` by them in turn, forward and
  // backward, takes fewer multiply-adds than by the whole weight: PARSER's σ on the neck's
  // convolutions, whose full weight gradient (out × in·kh·kw per pixel) it avoids.
  std::optional<WeightFactors> cheaper_factors(const torch::Tensor& input);

  torch::Tensor weight;
  torch::Tensor bias;  // undefined when the layer has none

 protected:
  torch::Tensor finish(const torch::Tensor& input, const torch::Tensor& output) {
    return hook_ ? hook_->output(input, output) : output;
  }

 private:
  std::shared_ptr<LayerHook> hook_;
};

class LinearImpl : public HookedLayer {
 public:
  LinearImpl(int64_t in_features, int64_t out_features, bool with_bias = true);
  torch::Tensor forward(const torch::Tensor& x);
  int64_t in_features, out_features;
};
TORCH_MODULE(Linear);

class Conv2dImpl : public HookedLayer {
 public:
  Conv2dImpl(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride = 1,
             int64_t padding = 0, bool with_bias = true);
  torch::Tensor forward(const torch::Tensor& x);
  int64_t stride, padding;
};
TORCH_MODULE(Conv2d);

}  // namespace sparser::model

#include "methods/adapter.h"

namespace sparser::methods {

BottleneckImpl::BottleneckImpl(int64_t features, int64_t bottleneck) {
  down = register_module("down", torch::nn::Linear(features, bottleneck));
  up = register_module("up", torch::nn::Linear(bottleneck, features));
  torch::NoGradGuard no_grad;
  up->weight.zero_();
  up->bias.zero_();
}

torch::Tensor BottleneckImpl::forward(const torch::Tensor& x) { return up(torch::relu(down(x))); }

std::vector<NamedLayer> apply_adapter(torch::nn::Module& model, const MethodConfig& config) {
  auto layers = select_layers(model, {"image_encoder.blocks.*.attn.proj"});
  for (auto& [name, layer] : layers)
    layer->attach(std::make_shared<AdapterHook>(layer->weight.size(0), config.adapter_bottleneck));
  return layers;
}

}  // namespace sparser::methods

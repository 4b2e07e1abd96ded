#pragma once
// Houlsby bottleneck adapters: after each encoder block's attention projection,
// y += up(ReLU(down(y))), with `up` zero-initialised so training starts from the
// pretrained function.
#include "methods/layer_selection.h"
#include "methods/method_config.h"
#include "model/layer_hook.h"

namespace sparser::methods {

class BottleneckImpl : public torch::nn::Module {
 public:
  BottleneckImpl(int64_t features, int64_t bottleneck);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear down{nullptr}, up{nullptr};
};
TORCH_MODULE(Bottleneck);

class AdapterHook : public model::LayerHook {
 public:
  AdapterHook(int64_t features, int64_t bottleneck) : adapter_(features, bottleneck) {}
  torch::Tensor output(const torch::Tensor&, const torch::Tensor& output) override {
    return output + adapter_(output);
  }
  // An adapter adds layers; no weight of the official model reproduces it.
  std::optional<torch::Tensor> merged_weight(const torch::Tensor&) override { return std::nullopt; }
  std::shared_ptr<torch::nn::Module> module() override { return adapter_.ptr(); }
  std::string name() const override { return to_string(MethodName::Adapter); }

 private:
  Bottleneck adapter_;
};

std::vector<NamedLayer> apply_adapter(torch::nn::Module& model, const MethodConfig& config);

}  // namespace sparser::methods

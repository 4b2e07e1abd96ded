#pragma once
// The one mechanism through which every fine-tuning method changes the image
// encoder: a hook attached to a Linear or Conv2d layer may re-express the layer's
// frozen weight (PARSER, LoRA, FacT) and/or add to its output (Adapter).
#include <torch/torch.h>

#include <optional>
#include <string>

namespace sparser::model {

// A layer's weight as the product left · right (left: out × r, right: r × in·kh·kw),
// e.g. PARSER's (U·diag σ)·Vᵀ.
struct WeightFactors {
  torch::Tensor left, right;
};

class LayerHook {
 public:
  virtual ~LayerHook() = default;
  // The weight the layer uses in this forward pass; `weight` is the pretrained one.
  virtual torch::Tensor weight(const torch::Tensor& weight) { return weight; }
  // The same weight as two factors, when the hook builds it from such and some factor
  // trains; the layer then multiplies by them in turn where that costs less than by
  // weight() (HookedLayer::cheaper_factors). nullopt: use weight().
  virtual std::optional<WeightFactors> weight_factors() { return std::nullopt; }
  // The layer's output after the hook; `input` is what the layer received.
  virtual torch::Tensor output(const torch::Tensor& input, const torch::Tensor& output) {
    (void)input;
    return output;
  }
  // A plain weight with the same effect, for exporting an official state dict;
  // nullopt when the hook's effect is not a weight change (e.g. an adapter).
  virtual std::optional<torch::Tensor> merged_weight(const torch::Tensor& weight) = 0;
  // Brackets one optimiser step (several images may pass forward and backward in it). A
  // hook that rebuilds its weight or factors (PARSER) builds them once at the first forward
  // of the step; end_step(true) passes the gradient collected on them back to the hook's own
  // tensors (end_step(false) drops it, after a failed step). Outside a step such a hook
  // rebuilds the weight at every call, so plain code needs neither. See methods::StepScope.
  virtual void begin_step() {}
  virtual void end_step(bool pass_gradients) { (void)pass_gradients; }
  // The hook's own tensors, registered under the layer (e.g. `...qkv.lora.A`).
  virtual std::shared_ptr<torch::nn::Module> module() = 0;
  // Name under which module() is registered inside the layer.
  virtual std::string name() const = 0;
};

}  // namespace sparser::model

#pragma once
// SAM-PARSER: a frozen weight W (a conv kernel reshaped to out × in·kh·kw) is
// decomposed once, W = U·diag(σ)·Vᵀ, and re-expressed in the forward pass as
// W' = (U·σ)·Vᵀ, so the coefficients σ (and/or the bases U, V) can be trained
// without adding parameters to the model's function.
#include <array>

#include "methods/layer_selection.h"
#include "methods/method_config.h"
#include "model/layer_hook.h"

namespace sparser::methods {

class SvdReparamImpl : public torch::nn::Module {
 public:
  // Thin SVD of `weight` computed in float64, stored in the weight's dtype.
  explicit SvdReparamImpl(const torch::Tensor& weight);
  // W' = (U·σ)·Vᵀ, reshaped to the original weight shape.
  torch::Tensor reconstruct() const;
  torch::Tensor U, sigma, V;
  std::vector<int64_t> weight_shape;
};
TORCH_MODULE(SvdReparam);

// W' for the layer's forward. Without autograd, W' is kept until σ, U or V change
// (evaluation rebuilds nothing). Within a training step (begin_step … end_step) W' is
// built once, used as a leaf by every forward of the step, and its summed gradient is
// sent back through the reconstruction once, at end_step().
class SvdReparamHook : public model::LayerHook {
 public:
  explicit SvdReparamHook(const torch::Tensor& weight) : reparam_(weight) {}
  torch::Tensor weight(const torch::Tensor&) override;
  void begin_step() override;
  void end_step(bool pass_gradients) override;
  std::shared_ptr<torch::nn::Module> module() override { return reparam_.ptr(); }
  std::optional<torch::Tensor> merged_weight(const torch::Tensor& weight) override { return this->weight(weight); }
  std::string name() const override { return to_string(MethodName::Parser); }
  SvdReparam reparam() const { return reparam_; }

 private:
  std::array<int64_t, 3> versions() const;
  SvdReparam reparam_;
  bool in_step_ = false;
  torch::Tensor frozen_weight_;              // W' built without autograd, valid for frozen_versions_
  std::array<int64_t, 3> frozen_versions_{};
  torch::Tensor step_weight_, step_graph_;   // the step's W' (a leaf) and the same W' in σ/U/V's graph
};

// Attaches an SVD reparameterisation to every layer matching the config's patterns
// and marks σ and/or U, V trainable. Returns the hooked layers.
std::vector<NamedLayer> apply_parser(torch::nn::Module& model, const MethodConfig& config);

}  // namespace sparser::methods

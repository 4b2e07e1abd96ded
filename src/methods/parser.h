#pragma once
// SAM-PARSER: a frozen weight W (a conv kernel reshaped to out × in·kh·kw) is
// decomposed once, W = U·diag(σ)·Vᵀ, and re-expressed in the forward pass as
// W' = (U·σ)·Vᵀ, so the coefficients σ (and/or the bases U, V) can be trained
// without adding parameters to the model's function.
#include <array>
#include <functional>

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

// A tensor built from σ, U, V once per training step: every forward of the step uses
// `leaf`, and end_step sends the gradient summed on it back through `graph` once.
struct StepTensor {
  // The step's leaf; `build` runs at the first call.
  const torch::Tensor& get(const std::function<torch::Tensor()>& build);
  void pass_gradient() const;
  torch::Tensor leaf, graph;
};

// W' for the layer's forward, or its factors (U·σ, Vᵀ) where the layer prefers them.
// Without autograd, W' is kept until σ, U or V change (evaluation rebuilds nothing).
// Within a training step (begin_step … end_step) W' and U·σ are built once each, used as
// leaves by every forward of the step, and their summed gradients are sent back through
// the reconstruction once, at end_step().
class SvdReparamHook : public model::LayerHook {
 public:
  explicit SvdReparamHook(const torch::Tensor& weight) : reparam_(weight) {}
  torch::Tensor weight(const torch::Tensor&) override;
  std::optional<model::WeightFactors> weight_factors() override;
  void begin_step() override;
  void end_step(bool pass_gradients) override;
  std::shared_ptr<torch::nn::Module> module() override { return reparam_.ptr(); }
  std::optional<torch::Tensor> merged_weight(const torch::Tensor& weight) override { return this->weight(weight); }
  std::string name() const override { return to_string(MethodName::Parser); }
  SvdReparam reparam() const { return reparam_; }

 private:
  std::array<int64_t, 3> versions() const;
  bool needs_graph() const;
  SvdReparam reparam_;
  bool in_step_ = false;
  torch::Tensor frozen_weight_;              // W' built without autograd, valid for frozen_versions_
  std::array<int64_t, 3> frozen_versions_{};
  StepTensor step_weight_, step_left_;       // the step's W' and U·σ
};

// Attaches an SVD reparameterisation to every layer matching the config's patterns
// and marks σ and/or U, V trainable. Returns the hooked layers.
std::vector<NamedLayer> apply_parser(torch::nn::Module& model, const MethodConfig& config);

}  // namespace sparser::methods

#pragma once
// SAM-PARSER: a frozen weight W (a conv kernel reshaped to out × in·kh·kw) is
// decomposed once, W = U·diag(σ)·Vᵀ, and re-expressed in the forward pass as
// W' = (U·σ)·Vᵀ, so the coefficients σ (and/or the bases U, V) can be trained
// without adding parameters to the model's function.
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

class SvdReparamHook : public model::LayerHook {
 public:
  explicit SvdReparamHook(const torch::Tensor& weight) : reparam_(weight) {}
  torch::Tensor weight(const torch::Tensor&) override { return reparam_->reconstruct(); }
  std::shared_ptr<torch::nn::Module> module() override { return reparam_.ptr(); }
  std::string name() const override { return "parser"; }
  SvdReparam reparam() const { return reparam_; }

 private:
  SvdReparam reparam_;
};

// Attaches an SVD reparameterisation to every layer matching the config's patterns
// and marks σ and/or U, V trainable. Returns the hooked layers.
std::vector<NamedLayer> apply_parser(torch::nn::Module& model, const MethodConfig& config);

}  // namespace sparser::methods

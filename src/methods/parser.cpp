#include "methods/parser.h"

namespace sparser::methods {

SvdReparamImpl::SvdReparamImpl(const torch::Tensor& weight) : weight_shape(weight.sizes().vec()) {
  torch::NoGradGuard no_grad;
  const auto matrix = weight.detach().reshape({weight.size(0), -1}).to(torch::kDouble);
  auto [u, s, vh] = torch::linalg_svd(matrix, /*full_matrices=*/false);
  U = register_parameter("U", u.to(weight.dtype()).contiguous(), /*requires_grad=*/false);
  sigma = register_parameter("sigma", s.to(weight.dtype()).contiguous(), /*requires_grad=*/false);
  V = register_parameter("V", vh.transpose(0, 1).to(weight.dtype()).contiguous(), /*requires_grad=*/false);
}

torch::Tensor SvdReparamImpl::reconstruct() const {
  // Scale U's columns instead of materialising diag(σ): O(out·r) instead of O(r²).
  return torch::matmul(U * sigma, V.transpose(0, 1)).view(weight_shape);
}

std::array<int64_t, 3> SvdReparamHook::versions() const {
  return {reparam_->U._version(), reparam_->sigma._version(), reparam_->V._version()};
}

torch::Tensor SvdReparamHook::weight(const torch::Tensor&) {
  const bool needs_graph = torch::GradMode::is_enabled() &&
                           (reparam_->sigma.requires_grad() || reparam_->U.requires_grad() || reparam_->V.requires_grad());
  if (!needs_graph) {
    if (!frozen_weight_.defined() || frozen_versions_ != versions()) {
      torch::NoGradGuard no_grad;
      frozen_weight_ = reparam_->reconstruct();
      frozen_versions_ = versions();
    }
    return frozen_weight_;
  }
  if (!in_step_) return reparam_->reconstruct();
  if (!step_weight_.defined()) {
    step_graph_ = reparam_->reconstruct();
    step_weight_ = step_graph_.detach().requires_grad_(true);
  }
  return step_weight_;
}

void SvdReparamHook::begin_step() {
  in_step_ = true;
  step_weight_ = step_graph_ = torch::Tensor();
}

void SvdReparamHook::end_step(bool pass_gradients) {
  if (pass_gradients && step_weight_.defined() && step_weight_.grad().defined())
    torch::autograd::backward({step_graph_}, {step_weight_.grad()});
  in_step_ = false;
  step_weight_ = step_graph_ = torch::Tensor();
}

std::vector<NamedLayer> apply_parser(torch::nn::Module& model, const MethodConfig& config) {
  auto layers = select_layers(model, expand_parser_layers(config.parser_layers));
  const bool coefficients = config.parser_train != ParserTrain::Bases;
  const bool bases = config.parser_train != ParserTrain::Coefficients;
  for (auto& [name, layer] : layers) {
    auto hook = std::make_shared<SvdReparamHook>(layer->weight);
    hook->reparam()->sigma.set_requires_grad(coefficients);
    hook->reparam()->U.set_requires_grad(bases);
    hook->reparam()->V.set_requires_grad(bases);
    layer->attach(hook);
  }
  return layers;
}

}  // namespace sparser::methods

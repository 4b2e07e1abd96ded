#include "methods/parser.h"

#include <stdexcept>

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

const torch::Tensor& StepTensor::get(const std::function<torch::Tensor()>& build) {
  if (!leaf.defined()) {
    graph = build();
    leaf = graph.detach().requires_grad_(true);
  }
  return leaf;
}

void StepTensor::pass_gradient() const {
  if (leaf.defined() && leaf.grad().defined()) torch::autograd::backward({graph}, {leaf.grad()});
}

std::array<int64_t, 3> SvdReparamHook::versions() const {
  return {reparam_->U._version(), reparam_->sigma._version(), reparam_->V._version()};
}

bool SvdReparamHook::needs_graph() const {
  return torch::GradMode::is_enabled() &&
         (reparam_->sigma.requires_grad() || reparam_->U.requires_grad() || reparam_->V.requires_grad());
}

torch::Tensor SvdReparamHook::weight(const torch::Tensor&) {
  if (!needs_graph()) {
    if (!frozen_weight_.defined() || frozen_versions_ != versions()) {
      torch::NoGradGuard no_grad;
      frozen_weight_ = reparam_->reconstruct();
      frozen_versions_ = versions();
    }
    return frozen_weight_;
  }
  if (!in_step_) return reparam_->reconstruct();
  return step_weight_.get([&] { return reparam_->reconstruct(); });
}

std::optional<model::WeightFactors> SvdReparamHook::weight_factors() {
  if (!needs_graph()) return std::nullopt;  // without autograd the one product by W' is cheaper
  const auto left = [&] { return reparam_->U * reparam_->sigma; };
  return model::WeightFactors{in_step_ ? step_left_.get(left) : left(), reparam_->V.t()};
}

void SvdReparamHook::begin_step() {
  in_step_ = true;
  step_weight_ = step_left_ = StepTensor();
}

void SvdReparamHook::end_step(bool pass_gradients) {
  if (pass_gradients) {
    step_weight_.pass_gradient();
    step_left_.pass_gradient();
  }
  in_step_ = false;
  step_weight_ = step_left_ = StepTensor();
}

std::vector<NamedLayer> apply_parser(torch::nn::Module& model, const MethodConfig& config) {
  auto layers = select_layers(model, expand_parser_layers(config.parser_layers));
  // The decoder and prompt encoder train whole (or not at all): a reparameterised layer
  // there would train U, V and its unused weight too.
  for (const auto& [name, layer] : layers)
    if (name.rfind("image_encoder.", 0) != 0)
      throw std::invalid_argument("method.layers selects '" + name +
                                  "', which is not in the image encoder: SAM-PARSER reparameterises image-encoder "
                                  "layers (the mask decoder trains whole)");
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

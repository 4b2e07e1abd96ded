#include "methods/lora.h"

#include <cmath>

#include "methods/qkv_slices.h"

namespace sparser::methods {

LowRankUpdatesImpl::LowRankUpdatesImpl(int64_t in_features, int64_t slice_features, int64_t rank,
                                       const std::vector<std::string>& targets_)
    : targets(targets_) {
  for (const auto& t : targets) {
    // As SAMed / the LoRA paper: A ~ kaiming-uniform(a=√5), B = 0, so the update starts at 0.
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
    A.push_back(register_parameter("A_" + t, torch::empty({rank, in_features}).uniform_(-bound, bound)));
    B.push_back(register_parameter("B_" + t, torch::zeros({slice_features, rank})));
  }
}

LoraHook::LoraHook(int64_t in_features, int64_t slice_features, const MethodConfig& config)
    : updates_(in_features, slice_features, config.lora_rank, config.lora_targets),
      scale_(config.lora_alpha / static_cast<double>(config.lora_rank)) {}

torch::Tensor LoraHook::output(const torch::Tensor& input, const torch::Tensor& output) {
  std::vector<torch::Tensor> updates;
  for (size_t i = 0; i < updates_->targets.size(); ++i)
    updates.push_back(torch::matmul(torch::matmul(input, updates_->A[i].t()), updates_->B[i].t()) * scale_);
  return add_to_qkv_output(output, updates_->targets, updates);
}

std::optional<torch::Tensor> LoraHook::merged_weight(const torch::Tensor& weight) {
  std::vector<torch::Tensor> deltas;
  for (size_t i = 0; i < updates_->targets.size(); ++i)
    deltas.push_back(torch::matmul(updates_->B[i], updates_->A[i]) * scale_);
  return add_to_qkv_weight(weight, updates_->targets, deltas);
}

std::vector<NamedLayer> apply_lora(torch::nn::Module& model, const MethodConfig& config) {
  auto layers = select_layers(model, {"image_encoder.blocks.*.attn.qkv"});
  for (auto& [name, layer] : layers) {
    const auto in = layer->weight.size(1), slice = layer->weight.size(0) / 3;
    layer->attach(std::make_shared<LoraHook>(in, slice, config));
  }
  return layers;
}

}  // namespace sparser::methods

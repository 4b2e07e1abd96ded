#include "methods/lora.h"

#include <cmath>

namespace sparser::methods {

int64_t qkv_slice_index(const std::string& target) {
  if (target == "q") return 0;
  if (target == "k") return 1;
  if (target == "v") return 2;
  throw std::invalid_argument("qkv target must be q, k or v (got '" + target + "')");
}

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
      slice_features_(slice_features),
      scale_(config.lora_alpha / static_cast<double>(config.lora_rank)) {}

torch::Tensor LoraHook::output(const torch::Tensor& input, const torch::Tensor& output) {
  auto slices = output.split(slice_features_, -1);
  for (size_t i = 0; i < updates_->targets.size(); ++i) {
    const auto s = qkv_slice_index(updates_->targets[i]);
    auto update = torch::matmul(torch::matmul(input, updates_->A[i].t()), updates_->B[i].t());
    slices[s] = slices[s] + scale_ * update;
  }
  return torch::cat(slices, -1);
}

std::optional<torch::Tensor> LoraHook::merged_weight(const torch::Tensor& weight) {
  auto merged = weight.clone();
  for (size_t i = 0; i < updates_->targets.size(); ++i) {
    const auto s = qkv_slice_index(updates_->targets[i]);
    merged.narrow(0, s * slice_features_, slice_features_)
        .add_(torch::matmul(updates_->B[i], updates_->A[i]), scale_);
  }
  return merged;
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

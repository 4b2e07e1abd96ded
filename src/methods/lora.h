#pragma once
// LoRA as in SAMed: each block's qkv projection gets rank-r updates of its q and v
// slices (configurable), y_t += (alpha/r)·B_t·A_t·x, with B_t = 0 at initialisation.
#include "methods/layer_selection.h"
#include "methods/method_config.h"
#include "model/layer_hook.h"

namespace sparser::methods {

class LowRankUpdatesImpl : public torch::nn::Module {
 public:
  // One (A: r×in, B: out_slice×r) pair per target slice of the qkv output.
  LowRankUpdatesImpl(int64_t in_features, int64_t slice_features, int64_t rank, const std::vector<std::string>& targets);
  std::vector<std::string> targets;
  std::vector<torch::Tensor> A, B;
};
TORCH_MODULE(LowRankUpdates);

class LoraHook : public model::LayerHook {
 public:
  LoraHook(int64_t in_features, int64_t slice_features, const MethodConfig& config);
  torch::Tensor output(const torch::Tensor& input, const torch::Tensor& output) override;
  std::optional<torch::Tensor> merged_weight(const torch::Tensor& weight) override;
  std::shared_ptr<torch::nn::Module> module() override { return updates_.ptr(); }
  std::string name() const override { return to_string(MethodName::Lora); }

 private:
  LowRankUpdates updates_;
  double scale_;
};

// Attaches LoRA to every encoder block's attn.qkv.
std::vector<NamedLayer> apply_lora(torch::nn::Module& model, const MethodConfig& config);

}  // namespace sparser::methods

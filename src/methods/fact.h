#pragma once
// FacT-TT (Jie & Deng, 2023): the updates of the encoder's linear weights form a
// tensor factorised as ΔW_{l,t} = s · V · Σ_{l,t} · U, with U (r×C) and V (C×r)
// shared by all blocks and a small core Σ_{l,t} per block and target. For lin1/lin2
// (4C wide) the core is 4r×r / r×4r and U, V act on each C-wide chunk.
#include "methods/layer_selection.h"
#include "methods/method_config.h"
#include "model/layer_hook.h"
#include "model/sam.h"

namespace sparser::methods {

// The factors shared by all blocks, registered once as image_encoder.fact.
class FactFactorsImpl : public torch::nn::Module {
 public:
  FactFactorsImpl(int64_t features, int64_t rank);
  // Applies U to each `chunks`-th part of the last dim: (..., chunks·C) → (..., chunks·r).
  torch::Tensor project_down(const torch::Tensor& x, int64_t chunks) const;
  // Applies V likewise: (..., chunks·r) → (..., chunks·C).
  torch::Tensor project_up(const torch::Tensor& x, int64_t chunks) const;
  torch::Tensor U, V;
};
TORCH_MODULE(FactFactors);

// The per-layer cores; a qkv layer has one per target slice, others one for the layer.
class FactCoresImpl : public torch::nn::Module {
 public:
  torch::Tensor add_core(const std::string& name, int64_t rows, int64_t cols);
};
TORCH_MODULE(FactCores);

class FactHook : public model::LayerHook {
 public:
  // `slices`: the qkv slices to update ({"q","k","v"} subset), or empty to update the
  // whole output. in_chunks / out_chunks: the layer's width in multiples of C.
  FactHook(FactFactors factors, std::vector<std::string> slices, int64_t in_chunks, int64_t out_chunks,
           double scale, double dropout);
  torch::Tensor output(const torch::Tensor& input, const torch::Tensor& output) override;
  std::optional<torch::Tensor> merged_weight(const torch::Tensor& weight) override;
  std::shared_ptr<torch::nn::Module> module() override { return cores_.ptr(); }
  std::string name() const override { return to_string(MethodName::Fact); }

 private:
  FactFactors factors_;
  FactCores cores_;
  std::vector<std::string> slices_;
  std::vector<torch::Tensor> cores_by_slice_;  // one per slice, or one for the whole output
  int64_t in_chunks_, out_chunks_;
  double scale_, dropout_;
};

// Registers the shared factors under image_encoder.fact and attaches a hook to every
// block's layers named by the config's targets (q, k, v → attn.qkv; proj; lin1; lin2).
std::vector<NamedLayer> apply_fact(model::SamImpl& sam, const MethodConfig& config);

}  // namespace sparser::methods

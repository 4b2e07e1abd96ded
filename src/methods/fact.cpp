#include "methods/fact.h"

#include <algorithm>
#include <cmath>

#include "methods/qkv_slices.h"

namespace sparser::methods {

namespace {
// (..., chunks·n) → (..., chunks, n)
torch::Tensor split_chunks(const torch::Tensor& x, int64_t chunks) {
  auto sizes = x.sizes().vec();
  sizes.back() /= chunks;
  sizes.insert(sizes.end() - 1, chunks);
  return x.reshape(sizes);
}
}  // namespace

FactFactorsImpl::FactFactorsImpl(int64_t features, int64_t rank) {
  // As FacT, whose U and V are bias-free nn.Linear layers: U with Linear's default
  // initialisation (kaiming-uniform, a = √5), V zero, so every update starts at 0.
  const double bound = 1.0 / std::sqrt(static_cast<double>(features));
  U = register_parameter("U", torch::empty({rank, features}).uniform_(-bound, bound));
  V = register_parameter("V", torch::zeros({features, rank}));
}

torch::Tensor FactFactorsImpl::project_down(const torch::Tensor& x, int64_t chunks) const {
  return torch::matmul(split_chunks(x, chunks), U.t()).flatten(-2);
}

torch::Tensor FactFactorsImpl::project_up(const torch::Tensor& x, int64_t chunks) const {
  return torch::matmul(split_chunks(x, chunks), V.t()).flatten(-2);
}

torch::Tensor FactCoresImpl::add_core(const std::string& name, int64_t rows, int64_t cols) {
  // nn.Linear's default initialisation, as FacT's cores are Linear layers.
  const double bound = 1.0 / std::sqrt(static_cast<double>(cols));
  return register_parameter(name, torch::empty({rows, cols}).uniform_(-bound, bound));
}

FactHook::FactHook(FactFactors factors, std::vector<std::string> slices, int64_t in_chunks, int64_t out_chunks,
                   double scale, double dropout)
    : factors_(std::move(factors)), slices_(std::move(slices)), in_chunks_(in_chunks), out_chunks_(out_chunks),
      scale_(scale), dropout_(dropout) {
  const auto r = factors_->U.size(0);
  if (slices_.empty()) {
    cores_by_slice_.push_back(cores_->add_core("core", out_chunks_ * r, in_chunks_ * r));
  } else {
    for (const auto& s : slices_) cores_by_slice_.push_back(cores_->add_core("core_" + s, r, r));
  }
}

torch::Tensor FactHook::output(const torch::Tensor& input, const torch::Tensor& output) {
  const auto down = factors_->project_down(input, in_chunks_);
  auto update = [&](const torch::Tensor& core, int64_t out_chunks) {
    // FacT drops out the cores' output while training.
    const auto mixed = torch::dropout(torch::matmul(down, core.t()), dropout_, cores_->is_training());
    return factors_->project_up(mixed, out_chunks) * scale_;
  };
  if (slices_.empty()) return output + update(cores_by_slice_[0], out_chunks_);
  std::vector<torch::Tensor> updates;
  for (const auto& core : cores_by_slice_) updates.push_back(update(core, 1));
  return add_to_qkv_output(output, slices_, updates);
}

std::optional<torch::Tensor> FactHook::merged_weight(const torch::Tensor& weight) {
  auto block_diagonal = [](const torch::Tensor& m, int64_t copies) {
    return torch::kron(torch::eye(copies, m.options()), m);
  };
  auto delta = [&](const torch::Tensor& core, int64_t out_chunks) {
    return torch::matmul(torch::matmul(block_diagonal(factors_->V, out_chunks), core),
                         block_diagonal(factors_->U, in_chunks_)) * scale_;
  };
  if (slices_.empty()) return weight + delta(cores_by_slice_[0], out_chunks_);
  std::vector<torch::Tensor> deltas;
  for (const auto& core : cores_by_slice_) deltas.push_back(delta(core, 1));
  return add_to_qkv_weight(weight, slices_, deltas);
}

std::vector<NamedLayer> apply_fact(model::SamImpl& sam, const MethodConfig& config) {
  const auto features = sam.config().encoder_embed_dim;
  FactFactors factors(features, config.fact_rank);
  sam.image_encoder->register_module(to_string(MethodName::Fact), factors);

  const auto& targets = config.fact_targets;
  auto wants = [&](const std::string& t) { return std::find(targets.begin(), targets.end(), t) != targets.end(); };
  std::vector<std::string> qkv_slices;
  for (const auto& t : {"q", "k", "v"})
    if (wants(t)) qkv_slices.push_back(t);

  std::vector<NamedLayer> hooked;
  auto attach_all = [&](const std::string& pattern, std::vector<std::string> slices) {
    for (auto& named : select_layers(sam, {pattern})) {
      const auto in_chunks = named.layer->weight.size(1) / features;
      const auto out_chunks = slices.empty() ? named.layer->weight.size(0) / features : 1;
      named.layer->attach(std::make_shared<FactHook>(factors, slices, in_chunks, out_chunks, config.fact_scale,
                                                     config.fact_dropout));
      hooked.push_back(named);
    }
  };
  if (!qkv_slices.empty()) attach_all("image_encoder.blocks.*.attn.qkv", qkv_slices);
  if (wants("proj")) attach_all("image_encoder.blocks.*.attn.proj", {});
  if (wants("lin1")) attach_all("image_encoder.blocks.*.mlp.lin1", {});
  if (wants("lin2")) attach_all("image_encoder.blocks.*.mlp.lin2", {});
  return hooked;
}

}  // namespace sparser::methods

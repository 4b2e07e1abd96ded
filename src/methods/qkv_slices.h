#pragma once
// The encoder attention's qkv projection stacks q, k and v along its output (3·C
// wide). LoRA and FacT update some of these slices; these helpers add per-slice
// updates to the layer's output or, for export, to its weight rows.
#include <torch/torch.h>

#include <string>
#include <vector>

namespace sparser::methods {

// Index of a target ("q", "k", "v") within the qkv output.
int64_t qkv_slice_index(const std::string& target);
// `output` (…, 3·C) with updates[i] (…, C) added to slice targets[i].
torch::Tensor add_to_qkv_output(const torch::Tensor& output, const std::vector<std::string>& targets,
                                const std::vector<torch::Tensor>& updates);
// A copy of `weight` (3·C × in) with deltas[i] (C × in) added to the rows of slice targets[i].
torch::Tensor add_to_qkv_weight(const torch::Tensor& weight, const std::vector<std::string>& targets,
                                const std::vector<torch::Tensor>& deltas);

}  // namespace sparser::methods

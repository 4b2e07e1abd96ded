#pragma once
// The image encoder's attention on a CPU, softmax(q·kᵀ·scale + decomposed relative-position
// bias)·v, computed block of queries by block of queries: a block's attention rows
// (at most ~1 MB) are made, normalised and used while they sit in cache, and never
// stored. The backward pass recomputes them (scores and softmax) from q, k and v, as
// FlashAttention does, so training keeps O(N) instead of O(N²) per head: for
// ViT-B at 1024² a global block's 12×4096×4096 maps (0.8 GB each) are never made.
// Same values as the direct computation up to float rounding (tests compare both).
#include <torch/torch.h>

#include <utility>

namespace sparser::model {

// q, k, v: (B·heads)×N×d with N = q_hw.first·q_hw.second query (= key) positions.
// rel_h: q_h×k_h×d and rel_w: q_w×k_w×d, the position tables of get_rel_pos; they get no
// gradient (use the direct computation to train them). Computed in the tables' dtype
// (float32 under autocast too); the result has q's dtype.
torch::Tensor blocked_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                const torch::Tensor& rel_h, const torch::Tensor& rel_w, double scale,
                                std::pair<int64_t, int64_t> q_hw, std::pair<int64_t, int64_t> k_hw);

}  // namespace sparser::model

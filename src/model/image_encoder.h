#pragma once
// The ViT image encoder (official: image_encoder.py): patch embedding, absolute
// position embedding, windowed/global attention blocks with decomposed relative
// position bias, and the convolutional neck.
#include <torch/torch.h>

#include <utility>

#include "model/common.h"
#include "model/sam_config.h"

namespace sparser::model {

// Multi-head attention over a B×H×W×C grid, with decomposed relative position bias.
class EncoderAttentionImpl : public torch::nn::Module {
 public:
  EncoderAttentionImpl(int64_t dim, int64_t num_heads, int64_t input_h, int64_t input_w);
  torch::Tensor forward(const torch::Tensor& x);
  Linear qkv{nullptr}, proj{nullptr};
  torch::Tensor rel_pos_h, rel_pos_w;
  int64_t num_heads;
  double scale;
};
TORCH_MODULE(EncoderAttention);

// Transformer block; window_size = 0 means global attention.
class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(int64_t dim, int64_t num_heads, double mlp_ratio, int64_t window_size, int64_t grid_size);
  torch::Tensor forward(const torch::Tensor& x);
  LayerNorm norm1{nullptr}, norm2{nullptr};
  EncoderAttention attn{nullptr};
  MLPBlock mlp{nullptr};
  int64_t window_size;
};
TORCH_MODULE(Block);

// Non-overlapping patch_size×patch_size convolution, output channels last.
class PatchEmbedImpl : public torch::nn::Module {
 public:
  PatchEmbedImpl(int64_t patch_size, int64_t in_chans, int64_t embed_dim);
  torch::Tensor forward(const torch::Tensor& x) { return proj(x).permute({0, 2, 3, 1}); }
  Conv2d proj{nullptr};
};
TORCH_MODULE(PatchEmbed);

class ImageEncoderViTImpl : public torch::nn::Module {
 public:
  explicit ImageEncoderViTImpl(const SamConfig& config);
  // B×3×S×S normalised, padded images → B×D×S/16×S/16 image embeddings.
  torch::Tensor forward(const torch::Tensor& x) { return forward_neck(forward_trunk(x)); }
  // Patch embedding + blocks: B×S/16×S/16×C (channels last). Runs without autograd
  // when no trunk tensor requires a gradient (e.g. only the neck is fine-tuned).
  torch::Tensor forward_trunk(const torch::Tensor& x);
  // The neck on a trunk output: B×S/16×S/16×C → B×D×S/16×S/16.
  torch::Tensor forward_neck(const torch::Tensor& trunk);
  // True when some tensor of the patch embedding, position embedding or blocks trains.
  bool trunk_requires_grad() const;

  PatchEmbed patch_embed{nullptr};
  torch::Tensor pos_embed;
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::Sequential neck{nullptr};
};
TORCH_MODULE(ImageEncoderViT);

// Splits B×H×W×C into (B·nW)×ws×ws×C windows, zero-padding H, W up to multiples of ws.
// Returns the windows and the padded (Hp, Wp).
std::pair<torch::Tensor, std::pair<int64_t, int64_t>> window_partition(const torch::Tensor& x,
                                                                        int64_t window_size);
// Inverse of window_partition, cropping the padding away.
torch::Tensor window_unpartition(const torch::Tensor& windows, int64_t window_size,
                                 std::pair<int64_t, int64_t> padded_hw, std::pair<int64_t, int64_t> hw);
// Relative positional embeddings for q_size × k_size positions (interpolated if needed).
torch::Tensor get_rel_pos(int64_t q_size, int64_t k_size, const torch::Tensor& rel_pos);
// attn += decomposed relative position bias (MViTv2), in place; returns attn.
torch::Tensor add_decomposed_rel_pos(torch::Tensor attn, const torch::Tensor& q,
                                     const torch::Tensor& rel_pos_h, const torch::Tensor& rel_pos_w,
                                     std::pair<int64_t, int64_t> q_size, std::pair<int64_t, int64_t> k_size);

}  // namespace sparser::model

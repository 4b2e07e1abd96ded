#pragma once
// The mask decoder's two-way transformer (official: transformer.py).
#include <torch/torch.h>

#include <utility>

#include "model/common.h"

namespace sparser::model {

// Attention with an optional down-projection of the embedding size for q, k and v.
class DecoderAttentionImpl : public torch::nn::Module {
 public:
  DecoderAttentionImpl(int64_t embedding_dim, int64_t num_heads, int64_t downsample_rate = 1);
  torch::Tensor forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);
  // Token → image attention whose keys are the image plus a constant (its positional
  // encoding): forward(q, image_with_pe, image), with the image's gradient through the keys
  // taken straight to `image` (image_with_pe's own gradient is not followed when folded).
  torch::Tensor to_image(const torch::Tensor& q, const torch::Tensor& image, const torch::Tensor& image_with_pe);
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};
  int64_t num_heads;

 private:
  // One side is the few prompt tokens, the other the image's positions: the tokens'
  // projections are folded into the image side's products (exact; fewer FLOPs).
  torch::Tensor few_keys(const torch::Tensor& x, const torch::Tensor& k, const torch::Tensor& v);
  // keys_follow_values: x is v plus a constant; x's gradient then goes to v.
  torch::Tensor few_queries(const torch::Tensor& q, const torch::Tensor& x, const torch::Tensor& v,
                            bool keys_follow_values);
  bool folds(const torch::Tensor& q, const torch::Tensor& k) const;
  double scale() const;
};
TORCH_MODULE(DecoderAttention);

// Self-attention of the tokens, token→image and image→token cross-attention, MLP.
class TwoWayAttentionBlockImpl : public torch::nn::Module {
 public:
  TwoWayAttentionBlockImpl(int64_t embedding_dim, int64_t num_heads, int64_t mlp_dim, int64_t downsample_rate,
                           bool skip_first_layer_pe);
  // Returns the updated (queries, keys).
  std::pair<torch::Tensor, torch::Tensor> forward(torch::Tensor queries, torch::Tensor keys,
                                                  const torch::Tensor& query_pe, const torch::Tensor& key_pe);
  DecoderAttention self_attn{nullptr}, cross_attn_token_to_image{nullptr}, cross_attn_image_to_token{nullptr};
  LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr}, norm4{nullptr};
  MLPBlock mlp{nullptr};
  bool skip_first_layer_pe;
};
TORCH_MODULE(TwoWayAttentionBlock);

class TwoWayTransformerImpl : public torch::nn::Module {
 public:
  TwoWayTransformerImpl(int64_t depth, int64_t embedding_dim, int64_t num_heads, int64_t mlp_dim,
                        int64_t downsample_rate);
  // image_embedding, image_pe: B×C×h×w; point_embedding: B×T×C. Returns (tokens, image keys B×hw×C).
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& image_embedding, const torch::Tensor& image_pe,
                                                  const torch::Tensor& point_embedding);
  torch::nn::ModuleList layers{nullptr};
  DecoderAttention final_attn_token_to_image{nullptr};
  LayerNorm norm_final_attn{nullptr};
};
TORCH_MODULE(TwoWayTransformer);

}  // namespace sparser::model

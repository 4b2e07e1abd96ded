#include "model/transformer.h"

#include <algorithm>
#include <cmath>

namespace sparser::model {

namespace {
LayerNorm layer_norm(int64_t dim) { return LayerNorm(dim, 1e-5); }

// x: B×N×(heads·d) → B×(heads·d)×(heads·N), zero but for the head blocks:
// out[b, h·d + i, h·N + n] = x[b, n, h·d + i]. A product with it computes every head's
// dot products at once, as one matrix product of ordinary shape.
torch::Tensor heads_block_diagonal(const torch::Tensor& x, int64_t heads) {
  const auto B = x.size(0), N = x.size(1), C = x.size(2), d = C / heads;
  auto blocks = torch::zeros({B, heads, d, heads, N}, x.options());
  blocks.diagonal(0, 1, 3).copy_(x.reshape({B, N, heads, d}).permute({0, 3, 1, 2}));
  return blocks.view({B, C, heads * N});
}
}  // namespace

DecoderAttentionImpl::DecoderAttentionImpl(int64_t embedding_dim, int64_t heads, int64_t downsample_rate)
    : num_heads(heads) {
  const auto internal_dim = embedding_dim / downsample_rate;
  TORCH_CHECK(internal_dim % heads == 0, "num_heads must divide embedding_dim / downsample_rate");
  q_proj = register_module("q_proj", Linear(embedding_dim, internal_dim));
  k_proj = register_module("k_proj", Linear(embedding_dim, internal_dim));
  v_proj = register_module("v_proj", Linear(embedding_dim, internal_dim));
  out_proj = register_module("out_proj", Linear(internal_dim, embedding_dim));
}

torch::Tensor DecoderAttentionImpl::forward(const torch::Tensor& q_in, const torch::Tensor& k_in,
                                            const torch::Tensor& v_in) {
  // Official: per-head batched products. One side is always the few prompt tokens, so
  // here the heads are laid out as a block-diagonal matrix of that side and each
  // product runs for all heads at once (same sums; the zero blocks add nothing).
  const auto q = q_proj(q_in), k = k_proj(k_in), v = v_proj(v_in);
  const auto B = std::max(q.size(0), k.size(0)), Nq = q.size(1), Nk = k.size(1), C = q.size(2);
  const auto H = num_heads, d = C / H;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  torch::Tensor out;
  if (Nk <= Nq) {
    // Few keys: logits B×Nq×(H·Nk), softmax within each head's Nk keys.
    const auto logits = torch::matmul(q, heads_block_diagonal(k, H)) * scale;
    const auto attn = logits.view({B, Nq, H, Nk}).softmax(-1).view({B, Nq, H * Nk});
    out = torch::matmul(attn, heads_block_diagonal(v, H).transpose(1, 2));
  } else {
    // Few queries: logits B×Nk×(H·Nq), softmax over the Nk keys of each (head, query).
    const auto attn = (torch::matmul(k, heads_block_diagonal(q, H)) * scale).softmax(1);
    // (H·Nq)×C per image; row h·Nq + t holds query t's output in head h's columns.
    const auto all_heads = torch::matmul(attn.transpose(1, 2), v).view({B, H, Nq, H, d});
    out = all_heads.diagonal(0, 1, 3).permute({0, 1, 3, 2}).reshape({B, Nq, C});
  }
  return out_proj(out);
}

TwoWayAttentionBlockImpl::TwoWayAttentionBlockImpl(int64_t dim, int64_t heads, int64_t mlp_dim,
                                                   int64_t downsample_rate, bool skip_pe)
    : skip_first_layer_pe(skip_pe) {
  self_attn = register_module("self_attn", DecoderAttention(dim, heads));
  norm1 = register_module("norm1", layer_norm(dim));
  cross_attn_token_to_image =
      register_module("cross_attn_token_to_image", DecoderAttention(dim, heads, downsample_rate));
  norm2 = register_module("norm2", layer_norm(dim));
  mlp = register_module("mlp", MLPBlock(dim, mlp_dim, Activation::ReLU));
  norm3 = register_module("norm3", layer_norm(dim));
  norm4 = register_module("norm4", layer_norm(dim));
  cross_attn_image_to_token =
      register_module("cross_attn_image_to_token", DecoderAttention(dim, heads, downsample_rate));
}

std::pair<torch::Tensor, torch::Tensor> TwoWayAttentionBlockImpl::forward(torch::Tensor queries, torch::Tensor keys,
                                                                          const torch::Tensor& query_pe,
                                                                          const torch::Tensor& key_pe) {
  if (skip_first_layer_pe) {
    queries = self_attn(queries, queries, queries);
  } else {
    auto q = queries + query_pe;
    queries = queries + self_attn(q, q, queries);
  }
  queries = norm1(queries);

  // keys change only at the end of the block: keys + key_pe serves both cross-attentions.
  const auto k = keys + key_pe;
  auto q = queries + query_pe;
  queries = norm2(queries + cross_attn_token_to_image(q, k, keys));
  queries = norm3(queries + mlp(queries));

  q = queries + query_pe;
  keys = norm4(keys + cross_attn_image_to_token(k, q, queries));
  return {queries, keys};
}

TwoWayTransformerImpl::TwoWayTransformerImpl(int64_t depth, int64_t dim, int64_t heads, int64_t mlp_dim,
                                             int64_t downsample_rate) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < depth; ++i)
    layers->push_back(TwoWayAttentionBlock(dim, heads, mlp_dim, downsample_rate, /*skip_first_layer_pe=*/i == 0));
  final_attn_token_to_image = register_module("final_attn_token_to_image", DecoderAttention(dim, heads, downsample_rate));
  norm_final_attn = register_module("norm_final_attn", layer_norm(dim));
}

std::pair<torch::Tensor, torch::Tensor> TwoWayTransformerImpl::forward(const torch::Tensor& image_embedding,
                                                                       const torch::Tensor& image_pe,
                                                                       const torch::Tensor& point_embedding) {
  auto keys = image_embedding.flatten(2).permute({0, 2, 1});
  auto key_pe = image_pe.flatten(2).permute({0, 2, 1});
  auto queries = point_embedding;
  for (const auto& layer : *layers)
    std::tie(queries, keys) = layer->as<TwoWayAttentionBlock>()->forward(queries, keys, point_embedding, key_pe);
  auto attn_out = final_attn_token_to_image(queries + point_embedding, keys + key_pe, keys);
  return {norm_final_attn(queries + attn_out), keys};
}

}  // namespace sparser::model

#include "model/transformer.h"

#include <cmath>

namespace sparser::model {

namespace {
LayerNorm layer_norm(int64_t dim) { return LayerNorm(dim, 1e-5); }

// B×N×C → B×heads×N×C/heads
torch::Tensor separate_heads(const torch::Tensor& x, int64_t heads) {
  return x.reshape({x.size(0), x.size(1), heads, x.size(2) / heads}).transpose(1, 2);
}
torch::Tensor recombine_heads(const torch::Tensor& x) {
  return x.transpose(1, 2).reshape({x.size(0), x.size(2), x.size(1) * x.size(3)});
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
  auto q = separate_heads(q_proj(q_in), num_heads);
  auto k = separate_heads(k_proj(k_in), num_heads);
  auto v = separate_heads(v_proj(v_in), num_heads);
  auto attn = torch::matmul(q, k.permute({0, 1, 3, 2})) / std::sqrt(static_cast<double>(q.size(3)));
  return out_proj(recombine_heads(torch::matmul(attn.softmax(-1), v)));
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

  auto q = queries + query_pe;
  auto k = keys + key_pe;
  queries = norm2(queries + cross_attn_token_to_image(q, k, keys));
  queries = norm3(queries + mlp(queries));

  q = queries + query_pe;
  k = keys + key_pe;
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

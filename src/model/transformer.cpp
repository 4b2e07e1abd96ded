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

// Columns of heads_block_diagonal reordered from (head, token) to (token, head): a
// softmax over the few tokens then runs over a middle dimension with the heads
// innermost, which LibTorch vectorises (over a last dimension of 7 it is ~10× slower).
torch::Tensor token_major(const torch::Tensor& blocks, int64_t heads) {
  const auto B = blocks.size(0), C = blocks.size(1), T = blocks.size(2) / heads;
  return blocks.view({B, C, heads, T}).transpose(2, 3).reshape({B, C, T * heads});
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// softmax(to_logits·keysᵀ + bias)·values: rows of queries (heads × tokens) attending over
// the image's positions. When the keys are the values plus a constant (the positional
// encoding), the values' two gradients, through the logits and as values, come out of
// one product with twice the inner terms: one image-sized result instead of two products
// and their sum, image-sized passes that bound the cached training step.
struct ImageWeightedSum : torch::autograd::Function<ImageWeightedSum> {
  // to_logits: b×R×E, bias: b×R×1, keys and values: b×N×E.
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& to_logits, const torch::Tensor& bias,
                               const torch::Tensor& keys, const torch::Tensor& values, bool keys_follow_values) {
    const auto attn = torch::baddbmm(bias, to_logits, keys.transpose(1, 2)).softmax(-1);  // b×R×N
    ctx->save_for_backward({to_logits, keys, values, attn});
    ctx->saved_data["keys_follow_values"] = keys_follow_values;
    return torch::bmm(attn, values);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &to_logits = saved[0], &keys = saved[1], &values = saved[2], &attn = saved[3];
    const auto grad_summed = grads[0].contiguous();
    const auto grad_logits = at::_softmax_backward_data(torch::bmm(grad_summed, values.transpose(1, 2)), attn, -1,
                                                        attn.scalar_type());
    torch::Tensor grad_keys, grad_values;
    if (ctx->saved_data["keys_follow_values"].toBool()) {
      if (ctx->needs_input_grad(3))
        grad_values = torch::bmm(torch::cat({grad_logits, attn}, 1).transpose(1, 2),
                                 torch::cat({to_logits, grad_summed}, 1));
    } else {
      if (ctx->needs_input_grad(2)) grad_keys = torch::bmm(grad_logits.transpose(1, 2), to_logits);
      if (ctx->needs_input_grad(3)) grad_values = torch::bmm(attn.transpose(1, 2), grad_summed);
    }
    return {torch::bmm(grad_logits, keys), grad_logits.sum(-1, true), grad_keys, grad_values, torch::Tensor()};
  }
};

// B×R×E queries' sums over one image (b = 1, shared by the B prompt sets: their rows
// share one product) or over their own (b = B).
torch::Tensor image_weighted_sum(const torch::Tensor& to_logits, const torch::Tensor& bias, const torch::Tensor& keys,
                                 const torch::Tensor& values, bool keys_follow_values) {
  TORCH_CHECK(keys.size(0) == values.size(0), "decoder attention: ", keys.size(0), " keys for ", values.size(0),
              " values");
  // In the image's precision: under bfloat16 autocast the folded queries arrive in bf16.
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  const auto type = values.scalar_type();
  const auto b = keys.size(0), E = to_logits.size(2);
  const auto summed =
      ImageWeightedSum::apply(to_logits.to(type).reshape({b, -1, E}), bias.to(type).reshape({b, -1, 1}),
                              keys_follow_values ? keys.detach() : keys, values, keys_follow_values);
  return summed.view(to_logits.sizes());
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
  if (folds(q_in, k_in))
    return k_in.size(1) <= q_in.size(1) ? few_keys(q_in, k_in, v_in) : few_queries(q_in, k_in, v_in, false);

  // Official: per-head batched products. Here every head's dot products come from one
  // product with a block-diagonal matrix (same sums; the zero blocks add nothing).
  const auto q = q_proj(q_in), k = k_proj(k_in), v = v_proj(v_in);
  const auto B = std::max(q.size(0), k.size(0)), Nq = q.size(1), Nk = k.size(1), H = num_heads;
  const auto logits = torch::matmul(q, heads_block_diagonal(k, H)) * scale();
  const auto attn = logits.view({B, Nq, H, Nk}).softmax(-1).view({B, Nq, H * Nk});
  return out_proj(torch::matmul(attn, heads_block_diagonal(v, H).transpose(1, 2)));
}

torch::Tensor DecoderAttentionImpl::to_image(const torch::Tensor& q, const torch::Tensor& image,
                                             const torch::Tensor& image_with_pe) {
  if (folds(q, image) && image.size(1) > q.size(1)) return few_queries(q, image_with_pe, image, true);
  return forward(q, image_with_pe, image);
}

bool DecoderAttentionImpl::folds(const torch::Tensor& q_in, const torch::Tensor& k_in) const {
  const auto few = std::min(q_in.size(1), k_in.size(1));
  const bool hooked = q_proj->hook() || k_proj->hook() || v_proj->hook() || out_proj->hook();
  // Folding pays when the few tokens' columns, one block per head, are fewer than the
  // projections' columns (SAM: 8 heads × 7 tokens = 56 < 128).
  return !hooked && num_heads * few < q_proj->out_features;
}

double DecoderAttentionImpl::scale() const {
  return 1.0 / std::sqrt(static_cast<double>(q_proj->out_features / num_heads));
}

// The image tokens are the queries (image → token). With K the block-diagonal matrix of
// the projected keys, logits = (x·Wqᵀ + bq)·K = x·(Wqᵀ·K) + bq·K, and out_proj(attn·Vᵀ) =
// attn·(V·Woᵀ) + bo: the image tokens meet one E×(heads·T) matrix on each side instead of
// the E×E/2 projections and then the tokens.
torch::Tensor DecoderAttentionImpl::few_keys(const torch::Tensor& x, const torch::Tensor& k_in,
                                             const torch::Tensor& v_in) {
  const auto keys = token_major(heads_block_diagonal(k_proj(k_in), num_heads), num_heads);    // B×Ci×TH
  const auto values = token_major(heads_block_diagonal(v_proj(v_in), num_heads), num_heads);  // B×Ci×TH
  const auto B = keys.size(0), N = x.size(1), T = k_in.size(1);
  const auto to_logits = torch::matmul(q_proj->weight.t(), keys) * scale();              // B×E×TH
  const auto logit_bias = torch::matmul(q_proj->bias, keys).unsqueeze(1) * scale();      // B×1×TH
  const auto from_heads = torch::matmul(values.transpose(1, 2), out_proj->weight.t());   // B×TH×E
  const auto logits = torch::baddbmm(logit_bias, x.expand({B, N, x.size(2)}), to_logits);
  const auto attn = logits.view({B, N, T, num_heads}).softmax(2).view({B, N, T * num_heads});
  return torch::baddbmm(out_proj->bias, attn, from_heads);
}

// The image tokens are the keys and values (token → image). With Q the block-diagonal
// matrix of the projected queries, logitsᵀ = Qᵀ·(Wk·xᵀ + bk) = (Qᵀ·Wk)·xᵀ + Qᵀ·bk; the
// values are projected after the weighted sum, Σₙ aₙ(Wv·vₙ + bv) = Wv·Σₙ aₙvₙ + bv, since
// each row of attention weights sums to 1.
torch::Tensor DecoderAttentionImpl::few_queries(const torch::Tensor& q_in, const torch::Tensor& x,
                                                const torch::Tensor& v_in, bool keys_follow_values) {
  const auto queries = heads_block_diagonal(q_proj(q_in), num_heads).transpose(1, 2);  // B×HT×Ci
  const auto B = queries.size(0), T = q_in.size(1), E = x.size(2);
  const auto H = num_heads, d = q_proj->out_features / H;
  const auto to_logits = torch::matmul(queries, k_proj->weight) * scale();              // B×HT×E
  const auto logit_bias = torch::matmul(queries, k_proj->bias).unsqueeze(2) * scale();  // B×HT×1
  const auto summed = image_weighted_sum(to_logits, logit_bias, x, v_in, keys_follow_values);  // B×HT×E
  // Row h·T + t holds query t's sum for head h; only head h's columns of it are wanted.
  const auto all_heads = torch::addmm(v_proj->bias, summed.view({B * H * T, E}), v_proj->weight.t());
  const auto out = all_heads.view({B, H, T, H, d}).diagonal(0, 1, 3).permute({0, 1, 3, 2}).reshape({B, T, H * d});
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
  queries = norm2(queries + cross_attn_token_to_image->to_image(q, keys, k));
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
  // B×C×h×w → B×hw×C (a view when the embedding is channels-last, as the neck leaves it).
  const auto tokens_last = [](const torch::Tensor& x) {
    return x.permute({0, 2, 3, 1}).reshape({x.size(0), x.size(2) * x.size(3), x.size(1)});
  };
  auto keys = tokens_last(image_embedding);
  auto key_pe = tokens_last(image_pe);
  auto queries = point_embedding;
  for (const auto& layer : *layers)
    std::tie(queries, keys) = layer->as<TwoWayAttentionBlock>()->forward(queries, keys, point_embedding, key_pe);
  auto attn_out = final_attn_token_to_image->to_image(queries + point_embedding, keys, keys + key_pe);
  return {norm_final_attn(queries + attn_out), keys};
}

}  // namespace sparser::model

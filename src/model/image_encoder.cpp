#include "model/image_encoder.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "model/blocked_attention.h"

namespace F = torch::nn::functional;

namespace sparser::model {

std::pair<torch::Tensor, std::pair<int64_t, int64_t>> window_partition(const torch::Tensor& x,
                                                                        int64_t ws) {
  const auto B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  const auto pad_h = (ws - H % ws) % ws, pad_w = (ws - W % ws) % ws;
  auto padded = (pad_h > 0 || pad_w > 0) ? F::pad(x, F::PadFuncOptions({0, 0, 0, pad_w, 0, pad_h})) : x;
  const auto Hp = H + pad_h, Wp = W + pad_w;
  auto windows = padded.view({B, Hp / ws, ws, Wp / ws, ws, C})
                     .permute({0, 1, 3, 2, 4, 5})
                     .contiguous()
                     .view({-1, ws, ws, C});
  return {windows, {Hp, Wp}};
}

torch::Tensor window_unpartition(const torch::Tensor& windows, int64_t ws, std::pair<int64_t, int64_t> padded_hw,
                                 std::pair<int64_t, int64_t> hw) {
  const auto [Hp, Wp] = padded_hw;
  const auto [H, W] = hw;
  const auto B = windows.size(0) / (Hp * Wp / ws / ws);
  auto x = windows.view({B, Hp / ws, Wp / ws, ws, ws, -1}).permute({0, 1, 3, 2, 4, 5}).contiguous().view({B, Hp, Wp, -1});
  if (Hp > H || Wp > W) x = x.slice(1, 0, H).slice(2, 0, W).contiguous();
  return x;
}

torch::Tensor get_rel_pos(int64_t q_size, int64_t k_size, const torch::Tensor& rel_pos) {
  const auto max_rel_dist = 2 * std::max(q_size, k_size) - 1;
  auto table = rel_pos;
  if (rel_pos.size(0) != max_rel_dist) {
    table = F::interpolate(rel_pos.reshape({1, rel_pos.size(0), -1}).permute({0, 2, 1}),
                           F::InterpolateFuncOptions().size(std::vector<int64_t>{max_rel_dist}).mode(torch::kLinear))
                .reshape({-1, max_rel_dist})
                .permute({1, 0});
  }
  const double q_scale = std::max(static_cast<double>(k_size) / q_size, 1.0);
  const double k_scale = std::max(static_cast<double>(q_size) / k_size, 1.0);
  auto q_coords = torch::arange(q_size, torch::kDouble).unsqueeze(1) * q_scale;
  auto k_coords = torch::arange(k_size, torch::kDouble).unsqueeze(0) * k_scale;
  auto relative = (q_coords - k_coords) + (k_size - 1) * k_scale;
  return table.index({relative.to(torch::kLong)});
}

torch::Tensor add_decomposed_rel_pos(torch::Tensor attn, const torch::Tensor& q, const torch::Tensor& rel_pos_h,
                                     const torch::Tensor& rel_pos_w, std::pair<int64_t, int64_t> q_size,
                                     std::pair<int64_t, int64_t> k_size) {
  const auto [q_h, q_w] = q_size;
  const auto [k_h, k_w] = k_size;
  auto Rh = get_rel_pos(q_h, k_h, rel_pos_h);
  auto Rw = get_rel_pos(q_w, k_w, rel_pos_w);
  const auto B = q.size(0), dim = q.size(2);
  auto r_q = q.reshape({B, q_h, q_w, dim});
  auto rel_h = torch::einsum("bhwc,hkc->bhwk", {r_q, Rh});
  auto rel_w = torch::einsum("bhwc,wkc->bhwk", {r_q, Rw});
  // In place: the attention map is the largest tensor of the encoder (B·heads × N × N),
  // and two out-of-place broadcasts would allocate and stream it twice more.
  auto biased = attn.view({B, q_h, q_w, k_h, k_w});
  biased.add_(rel_h.unsqueeze(4)).add_(rel_w.unsqueeze(3));
  return attn;
}

EncoderAttentionImpl::EncoderAttentionImpl(int64_t dim, int64_t heads, int64_t input_h, int64_t input_w)
    : num_heads(heads) {
  const auto head_dim = dim / heads;
  scale = std::pow(static_cast<double>(head_dim), -0.5);
  qkv = register_module("qkv", Linear(dim, dim * 3));
  proj = register_module("proj", Linear(dim, dim));
  rel_pos_h = register_parameter("rel_pos_h", torch::zeros({2 * input_h - 1, head_dim}));
  rel_pos_w = register_parameter("rel_pos_w", torch::zeros({2 * input_w - 1, head_dim}));
}

torch::Tensor EncoderAttentionImpl::forward(const torch::Tensor& x) {
  const auto B = x.size(0), H = x.size(1), W = x.size(2);
  auto qkv_out = qkv(x).reshape({B, H * W, 3, num_heads, -1}).permute({2, 0, 3, 1, 4});
  auto qkv_heads = qkv_out.reshape({3, B * num_heads, H * W, -1}).unbind(0);
  const auto &q = qkv_heads[0], &k = qkv_heads[1], &v = qkv_heads[2];
  torch::Tensor out;
  const bool tables_train = torch::GradMode::is_enabled() && (rel_pos_h.requires_grad() || rel_pos_w.requires_grad());
  if (tables_train || !x.is_cpu()) {
    // As the official code: the whole attention map at once, when the tables train, and on
    // a GPU, which wants a few large kernels (the blocks are sized for a CPU core's cache).
    auto attn = torch::matmul(q * scale, k.transpose(-2, -1));
    attn = add_decomposed_rel_pos(attn, q, rel_pos_h, rel_pos_w, {H, W}, {H, W});
    out = torch::matmul(attn.softmax(-1), v);
  } else {
    out = blocked_attention(q, k, v, get_rel_pos(H, H, rel_pos_h).detach(), get_rel_pos(W, W, rel_pos_w).detach(),
                            scale, {H, W}, {H, W});
  }
  return proj(out.view({B, num_heads, H, W, -1}).permute({0, 2, 3, 1, 4}).reshape({B, H, W, -1}));
}

BlockImpl::BlockImpl(int64_t dim, int64_t num_heads, double mlp_ratio, int64_t window_size_, int64_t grid_size)
    : window_size(window_size_) {
  const auto attn_size = window_size == 0 ? grid_size : window_size;
  norm1 = register_module("norm1", LayerNorm(dim, 1e-6));
  attn = register_module("attn", EncoderAttention(dim, num_heads, attn_size, attn_size));
  norm2 = register_module("norm2", LayerNorm(dim, 1e-6));
  mlp = register_module("mlp", MLPBlock(dim, static_cast<int64_t>(dim * mlp_ratio), Activation::GELU));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x) {
  auto h = norm1(x);
  if (window_size > 0) {
    const auto H = h.size(1), W = h.size(2);
    auto [windows, padded_hw] = window_partition(h, window_size);
    h = window_unpartition(attn(windows), window_size, padded_hw, {H, W});
  } else {
    h = attn(h);
  }
  auto y = x + h;
  return y + mlp(norm2(y));
}

PatchEmbedImpl::PatchEmbedImpl(int64_t patch_size, int64_t in_chans, int64_t embed_dim) {
  proj = register_module("proj", Conv2d(in_chans, embed_dim, patch_size, patch_size));
}

ImageEncoderViTImpl::ImageEncoderViTImpl(const SamConfig& c) {
  const auto grid = c.embedding_size();
  const auto dim = c.encoder_embed_dim;
  patch_embed = register_module("patch_embed", PatchEmbed(c.patch_size, 3, dim));
  pos_embed = register_parameter("pos_embed", torch::zeros({1, grid, grid, dim}));
  blocks = register_module("blocks", torch::nn::ModuleList());
  const auto& global = c.encoder_global_attn_indexes;
  for (int64_t i = 0; i < c.encoder_depth; ++i) {
    const bool is_global = std::find(global.begin(), global.end(), i) != global.end();
    blocks->push_back(Block(dim, c.encoder_num_heads, c.mlp_ratio, is_global ? 0 : c.window_size, grid));
  }
  const auto out = c.prompt_embed_dim;
  neck = register_module("neck", torch::nn::Sequential(Conv2d(dim, out, 1, 1, 0, /*with_bias=*/false), LayerNorm2d(out),
                                                       Conv2d(out, out, 3, 1, 1, /*with_bias=*/false), LayerNorm2d(out)));
}

bool ImageEncoderViTImpl::trunk_requires_grad() const {
  if (pos_embed.requires_grad()) return true;
  for (const auto& p : patch_embed->parameters())
    if (p.requires_grad()) return true;
  for (const auto& p : blocks->parameters())
    if (p.requires_grad()) return true;
  return false;
}

torch::Tensor ImageEncoderViTImpl::forward_trunk(const torch::Tensor& x) {
  // With a frozen trunk no graph is recorded, so its activations are freed as we go.
  std::optional<torch::NoGradGuard> frozen;
  if (!trunk_requires_grad()) frozen.emplace();
  auto h = patch_embed(x) + pos_embed;
  for (const auto& block : *blocks) h = block->as<Block>()->forward(h);
  return h;
}

torch::Tensor ImageEncoderViTImpl::forward_neck(const torch::Tensor& trunk) {
  return neck->forward(trunk.permute({0, 3, 1, 2}));
}

}  // namespace sparser::model

#include "train/flop_count.h"

#include <algorithm>

namespace sparser::train {

namespace {
double linear(double tokens, double in, double out) { return 2 * tokens * in * out; }

// The linear layers of the blocks (qkv, proj, lin1, lin2): the part whose weights
// PARSER-transformer, LoRA, Adapter and FacT act on.
double block_linear_flops(const model::SamConfig& c) {
  const double C = static_cast<double>(c.encoder_embed_dim), H = C * c.mlp_ratio;
  const int64_t g = c.embedding_size();
  double total = 0;
  for (int64_t i = 0; i < c.encoder_depth; ++i) {
    const bool global = std::find(c.encoder_global_attn_indexes.begin(), c.encoder_global_attn_indexes.end(), i) !=
                        c.encoder_global_attn_indexes.end();
    const int64_t side = global || c.window_size == 0 ? g : (g + c.window_size - 1) / c.window_size * c.window_size;
    const double tokens = static_cast<double>(side * side);
    total += linear(tokens, C, 3 * C) + linear(tokens, C, C) + linear(g * g, C, H) + linear(g * g, H, C);
  }
  return total;
}

double attention_flops(const model::SamConfig& c) {
  const double C = static_cast<double>(c.encoder_embed_dim);
  const int64_t g = c.embedding_size();
  double total = 0;
  for (int64_t i = 0; i < c.encoder_depth; ++i) {
    const bool global = std::find(c.encoder_global_attn_indexes.begin(), c.encoder_global_attn_indexes.end(), i) !=
                        c.encoder_global_attn_indexes.end();
    const int64_t w = global || c.window_size == 0 ? g : c.window_size;
    const int64_t side = global || c.window_size == 0 ? g : (g + w - 1) / w * w;
    const double tokens = static_cast<double>(side * side), window_tokens = static_cast<double>(w * w);
    // q·kᵀ and attn·v over each window, plus the decomposed relative position terms.
    total += 4 * tokens * window_tokens * C + 4 * tokens * static_cast<double>(w) * C;
  }
  return total;
}
}  // namespace

double neck_forward_flops(const model::SamConfig& c) {
  const double g2 = static_cast<double>(c.embedding_size() * c.embedding_size());
  const double C = static_cast<double>(c.encoder_embed_dim), D = static_cast<double>(c.prompt_embed_dim);
  return linear(g2, C, D) + linear(g2, 9 * D, D);
}

double encoder_forward_flops(const model::SamConfig& c) {
  const double g2 = static_cast<double>(c.embedding_size() * c.embedding_size());
  const double patch = linear(g2, 3.0 * c.patch_size * c.patch_size, static_cast<double>(c.encoder_embed_dim));
  return patch + block_linear_flops(c) + attention_flops(c) + neck_forward_flops(c);
}

int64_t decoder_tokens_per_box(const model::SamConfig& c) { return 1 + (c.num_multimask_outputs + 1) + 2; }

double decoder_forward_flops(const model::SamConfig& c, int64_t boxes) {
  const double D = static_cast<double>(c.prompt_embed_dim), B = static_cast<double>(boxes);
  const double pixels = static_cast<double>(c.embedding_size() * c.embedding_size());
  const double tokens = static_cast<double>(decoder_tokens_per_box(c));
  const double inner = D / static_cast<double>(c.attention_downsample_rate);
  // Per two-way layer: self-attention of the tokens, token→image and image→token cross
  // attention (projections of every image position dominate), the tokens' MLP.
  const double cross = 2 * (linear(tokens, D, inner) + 2 * linear(pixels, D, inner) + linear(tokens, inner, D)) +
                       2 * 2 * tokens * pixels * inner;
  const double layer = 4 * linear(tokens, D, D) + cross + 2 * linear(tokens, D, c.decoder_mlp_dim);
  const double transformer = c.decoder_depth * layer + cross / 2;
  // Output upscaling (two transposed 2×2 convolutions) and the mask product.
  const double up = linear(pixels, D, 4 * D / 4) + linear(4 * pixels, D / 4, 4 * D / 8);
  const double masks = 2 * 16 * pixels * (D / 8) * (c.num_multimask_outputs + 1);
  return B * (transformer + up + masks);
}

double training_step_flops(const model::SamConfig& c, const methods::MethodConfig& m, int64_t boxes, bool cached) {
  const double decoder = decoder_forward_flops(c, boxes);
  const double neck = neck_forward_flops(c);
  const double trunk = encoder_forward_flops(c) - neck;
  using methods::MethodName;
  if (m.name == MethodName::ZeroShot) return (cached ? 0 : trunk) + neck + decoder;
  // Decoder: forward, input and weight gradients.
  double flops = 3 * decoder + (cached ? 0 : trunk);
  const auto layers = methods::expand_parser_layers(m.parser_layers);
  const bool trains_trunk =
      m.name == MethodName::Lora || m.name == MethodName::Adapter || m.name == MethodName::Fact ||
      (m.name == MethodName::Parser && std::any_of(layers.begin(), layers.end(), [](const std::string& p) {
         return p.find("blocks") != std::string::npos;
       }));
  const bool trains_neck = m.name == MethodName::Parser;
  if (trains_trunk) {
    // Input gradients through the trunk (every matrix product again); PARSER also forms
    // the weight gradients of the reparameterised linear layers.
    flops += trunk + (m.name == MethodName::Parser ? block_linear_flops(c) : 0);
    flops += 3 * neck;
  } else {
    flops += trains_neck ? 2 * neck + neck_forward_flops(c) / 2 : neck;  // neck input grads are not needed
  }
  return flops;
}

}  // namespace sparser::train

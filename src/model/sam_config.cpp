#include "model/sam_config.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

namespace sparser::model {

const std::vector<std::string>& sam_preset_names() {
  static const std::vector<std::string> names{"vit_b", "vit_l", "vit_h"};
  return names;
}

SamConfig sam_preset(const std::string& name) {
  SamConfig c;
  c.preset = name;
  if (name == "vit_b") {
    c.encoder_embed_dim = 768, c.encoder_depth = 12, c.encoder_num_heads = 12;
    c.encoder_global_attn_indexes = {2, 5, 8, 11};
  } else if (name == "vit_l") {
    c.encoder_embed_dim = 1024, c.encoder_depth = 24, c.encoder_num_heads = 16;
    c.encoder_global_attn_indexes = {5, 11, 17, 23};
  } else if (name == "vit_h") {
    c.encoder_embed_dim = 1280, c.encoder_depth = 32, c.encoder_num_heads = 16;
    c.encoder_global_attn_indexes = {7, 15, 23, 31};
  } else {
    throw std::invalid_argument("unknown model preset '" + name +
                                "' (expected vit_b, vit_l or vit_h; a custom model's dimensions are given by a "
                                "config's [model] table)");
  }
  return c;
}

std::optional<SamConfig::Problem> SamConfig::problem() const {
  const auto positive = [](double v) { return v > 0 && std::isfinite(v); };
  const std::vector<std::pair<bool, Problem>> rules{
      {positive(image_size), {{"image_size"}, "must be positive"}},
      {positive(patch_size), {{"patch_size"}, "must be positive"}},
      {image_size % std::max<int64_t>(patch_size, 1) == 0,
       {{"image_size", "patch_size"}, "image_size " + std::to_string(image_size) + " is not a multiple of patch_size " +
                                          std::to_string(patch_size)}},
      {positive(encoder_embed_dim), {{"encoder_embed_dim"}, "must be positive"}},
      {positive(encoder_depth), {{"encoder_depth"}, "must be positive"}},
      {positive(encoder_num_heads), {{"encoder_num_heads"}, "must be positive"}},
      {encoder_embed_dim % std::max<int64_t>(encoder_num_heads, 1) == 0,
       {{"encoder_num_heads", "encoder_embed_dim"}, "encoder_num_heads " + std::to_string(encoder_num_heads) +
                                                        " does not divide encoder_embed_dim " +
                                                        std::to_string(encoder_embed_dim)}},
      {window_size >= 0, {{"window_size"}, "must be >= 0 (0 = global attention everywhere)"}},
      {positive(mlp_ratio), {{"mlp_ratio"}, "must be a finite number > 0"}},
      {positive(prompt_embed_dim) && prompt_embed_dim % 8 == 0,
       {{"prompt_embed_dim"}, "must be a positive multiple of 8"}},
      {positive(mask_in_chans) && mask_in_chans % 4 == 0, {{"mask_in_chans"}, "must be a positive multiple of 4"}},
      {positive(decoder_depth), {{"decoder_depth"}, "must be positive"}},
      {positive(decoder_mlp_dim), {{"decoder_mlp_dim"}, "must be positive"}},
      {positive(decoder_num_heads), {{"decoder_num_heads"}, "must be positive"}},
      {positive(iou_head_hidden_dim), {{"iou_head_hidden_dim"}, "must be positive"}},
      {positive(iou_head_depth), {{"iou_head_depth"}, "must be positive"}},
      {positive(num_multimask_outputs), {{"num_multimask_outputs"}, "must be positive"}},
      {positive(attention_downsample_rate) && prompt_embed_dim % std::max<int64_t>(attention_downsample_rate, 1) == 0,
       {{"attention_downsample_rate", "prompt_embed_dim"},
        "attention_downsample_rate " + std::to_string(attention_downsample_rate) +
            " does not divide prompt_embed_dim " + std::to_string(prompt_embed_dim)}},
      {(prompt_embed_dim / std::max<int64_t>(attention_downsample_rate, 1)) % std::max<int64_t>(decoder_num_heads, 1) ==
           0,
       {{"decoder_num_heads", "prompt_embed_dim", "attention_downsample_rate"},
        "decoder_num_heads " + std::to_string(decoder_num_heads) +
            " does not divide prompt_embed_dim / attention_downsample_rate = " +
            std::to_string(prompt_embed_dim / std::max<int64_t>(attention_downsample_rate, 1))}}};
  for (const auto& [ok, problem] : rules)
    if (!ok) return problem;
  for (auto i : encoder_global_attn_indexes)
    if (i < 0 || i >= encoder_depth)
      return Problem{{"encoder_global_attn_indexes", "encoder_depth"},
                     "encoder_global_attn_indexes entry " + std::to_string(i) + " is outside [0, encoder_depth = " +
                         std::to_string(encoder_depth) + ")"};
  return std::nullopt;
}

void SamConfig::validate() const {
  if (const auto p = problem()) throw std::invalid_argument("model config: " + p->keys.front() + ": " + p->message);
}

std::vector<std::string> image_encoder_layer_names(const SamConfig& config) {
  std::vector<std::string> names{"image_encoder.patch_embed.proj"};
  for (int64_t i = 0; i < config.encoder_depth; ++i)
    for (const char* layer : {"attn.qkv", "attn.proj", "mlp.lin1", "mlp.lin2"})
      names.push_back("image_encoder.blocks." + std::to_string(i) + "." + layer);
  names.insert(names.end(), {"image_encoder.neck.0", "image_encoder.neck.2"});
  return names;
}

}  // namespace sparser::model

#include "model/sam_config.h"

#include <stdexcept>

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
                                "' (expected vit_b, vit_l, vit_h or custom)");
  }
  return c;
}

void SamConfig::validate() const {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("model config: " + what);
  };
  require(image_size > 0 && patch_size > 0, "image_size and patch_size must be positive");
  require(image_size % patch_size == 0, "image_size must be a multiple of patch_size");
  require(encoder_embed_dim > 0 && encoder_depth > 0 && encoder_num_heads > 0,
          "encoder dimensions must be positive");
  require(encoder_embed_dim % encoder_num_heads == 0,
          "encoder_embed_dim must be divisible by encoder_num_heads");
  require(window_size >= 0, "window_size must be >= 0 (0 = global attention everywhere)");
  for (auto i : encoder_global_attn_indexes)
    require(i >= 0 && i < encoder_depth, "encoder_global_attn_indexes entry " + std::to_string(i) +
                                             " is outside [0, encoder_depth)");
  require(mlp_ratio > 0, "mlp_ratio must be positive");
  require(prompt_embed_dim > 0 && prompt_embed_dim % 8 == 0,
          "prompt_embed_dim must be a positive multiple of 8");
  require(mask_in_chans > 0 && mask_in_chans % 4 == 0, "mask_in_chans must be a positive multiple of 4");
  require(decoder_depth > 0 && decoder_mlp_dim > 0 && decoder_num_heads > 0,
          "decoder dimensions must be positive");
  require(iou_head_hidden_dim > 0 && iou_head_depth > 0, "iou head dimensions must be positive");
  require(num_multimask_outputs > 0, "num_multimask_outputs must be positive");
  require(attention_downsample_rate > 0 && prompt_embed_dim % attention_downsample_rate == 0,
          "attention_downsample_rate must divide prompt_embed_dim");
  require((prompt_embed_dim / attention_downsample_rate) % decoder_num_heads == 0,
          "prompt_embed_dim / attention_downsample_rate must be divisible by decoder_num_heads");
}

}  // namespace sparser::model

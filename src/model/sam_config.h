#pragma once
// Every dimension of a SAM model. The presets reproduce the official build_sam.py;
// `custom` takes each value from the [model] table of a config.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sparser::model {

struct SamConfig {
  std::string preset = "custom";
  int64_t image_size = 1024;
  int64_t patch_size = 16;
  int64_t encoder_embed_dim = 768;
  int64_t encoder_depth = 12;
  int64_t encoder_num_heads = 12;
  int64_t window_size = 14;
  std::vector<int64_t> encoder_global_attn_indexes{2, 5, 8, 11};
  double mlp_ratio = 4.0;
  int64_t prompt_embed_dim = 256;
  int64_t mask_in_chans = 16;
  int64_t decoder_depth = 2;
  int64_t decoder_mlp_dim = 2048;
  int64_t decoder_num_heads = 8;
  int64_t iou_head_hidden_dim = 256;
  int64_t iou_head_depth = 3;
  int64_t num_multimask_outputs = 3;
  int64_t attention_downsample_rate = 2;

  // Side of the image-embedding grid (64 for the official models).
  int64_t embedding_size() const { return image_size / patch_size; }
  // The first inconsistent dimension: the keys (as in a [model] table) of the rule it
  // breaks, the one the message is about first, and what is wrong.
  struct Problem {
    std::vector<std::string> keys;
    std::string message;
  };
  std::optional<Problem> problem() const;
  // Throws std::invalid_argument naming the first inconsistent dimension.
  void validate() const;
};

// The dotted names of the image encoder's Linear and Conv2d layers, in model order
// ("image_encoder.patch_embed.proj", "image_encoder.blocks.0.attn.qkv", ...): what a
// PARSER layer pattern can select, known without building the model.
std::vector<std::string> image_encoder_layer_names(const SamConfig& config);

// The official vit_b / vit_l / vit_h dimensions; throws for any other name.
SamConfig sam_preset(const std::string& name);
const std::vector<std::string>& sam_preset_names();

}  // namespace sparser::model

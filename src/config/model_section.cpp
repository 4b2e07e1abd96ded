#include "config/model_section.h"

namespace sparser::config {

namespace {
const std::vector<std::string> kDimensionKeys{
    "image_size",          "patch_size",        "encoder_embed_dim",  "encoder_depth",
    "encoder_num_heads",   "window_size",       "encoder_global_attn_indexes", "mlp_ratio",
    "prompt_embed_dim",    "mask_in_chans",     "decoder_depth",      "decoder_mlp_dim",
    "decoder_num_heads",   "iou_head_hidden_dim", "iou_head_depth",   "num_multimask_outputs",
    "attention_downsample_rate"};
}  // namespace

ModelSection parse_model_section(const TomlSection& t) {
  std::vector<std::string> allowed{"preset", "checkpoint", "checkpoint_key"};
  allowed.insert(allowed.end(), kDimensionKeys.begin(), kDimensionKeys.end());
  t.reject_unknown_keys(allowed);

  ModelSection out;
  const auto preset = t.get_choice("preset", {"vit_b", "vit_l", "vit_h", "custom"}, "vit_b");
  if (preset == "custom") {
    out.sam.preset = "custom";
  } else {
    out.sam = model::sam_preset(preset);
    for (const auto& key : kDimensionKeys)
      if (t.has(key)) t.fail(key, "dimensions are fixed by preset '" + preset + "'; use preset = \"custom\"");
  }
  auto& c = out.sam;
  auto positive = [&](const std::string& key, int64_t fallback) {
    const auto v = t.get_int(key, fallback);
    if (v <= 0) t.fail(key, "must be positive (got " + std::to_string(v) + ")");
    return v;
  };
  c.image_size = positive("image_size", c.image_size);
  c.patch_size = positive("patch_size", c.patch_size);
  c.encoder_embed_dim = positive("encoder_embed_dim", c.encoder_embed_dim);
  c.encoder_depth = positive("encoder_depth", c.encoder_depth);
  c.encoder_num_heads = positive("encoder_num_heads", c.encoder_num_heads);
  c.window_size = t.get_int("window_size", c.window_size);
  if (c.window_size < 0) t.fail("window_size", "must be >= 0");
  c.encoder_global_attn_indexes = t.get_int_list("encoder_global_attn_indexes", c.encoder_global_attn_indexes);
  c.mlp_ratio = t.get_double("mlp_ratio", c.mlp_ratio);
  c.prompt_embed_dim = positive("prompt_embed_dim", c.prompt_embed_dim);
  c.mask_in_chans = positive("mask_in_chans", c.mask_in_chans);
  c.decoder_depth = positive("decoder_depth", c.decoder_depth);
  c.decoder_mlp_dim = positive("decoder_mlp_dim", c.decoder_mlp_dim);
  c.decoder_num_heads = positive("decoder_num_heads", c.decoder_num_heads);
  c.iou_head_hidden_dim = positive("iou_head_hidden_dim", c.iou_head_hidden_dim);
  c.iou_head_depth = positive("iou_head_depth", c.iou_head_depth);
  c.num_multimask_outputs = positive("num_multimask_outputs", c.num_multimask_outputs);
  c.attention_downsample_rate = positive("attention_downsample_rate", c.attention_downsample_rate);
  try {
    c.validate();
  } catch (const std::invalid_argument& e) {
    throw ConfigError(t.file() + ": [model]: " + e.what());
  }
  out.checkpoint = t.get_string("checkpoint", "");
  out.checkpoint_key = t.get_string("checkpoint_key", "");
  return out;
}

ModelSection load_model_section(const std::string& config_path) {
  const auto root = parse_toml_file(config_path);
  TomlSection top(&root, config_path, "");
  return parse_model_section(top.section("model"));
}

}  // namespace sparser::config

#include "config/model_section.h"

#include <algorithm>

namespace sparser::config {

namespace {
const std::vector<std::string> kDimensionKeys{
    "image_size",          "patch_size",        "encoder_embed_dim",  "encoder_depth",
    "encoder_num_heads",   "window_size",       "encoder_global_attn_indexes", "mlp_ratio",
    "prompt_embed_dim",    "mask_in_chans",     "decoder_depth",      "decoder_mlp_dim",
    "decoder_num_heads",   "iou_head_hidden_dim", "iou_head_depth",   "num_multimask_outputs",
    "attention_downsample_rate"};
}  // namespace

ModelSection parse_model_section(const TomlSection& t, Checks checks) {
  std::vector<std::string> allowed{"preset", "checkpoint", "checkpoint_key"};
  allowed.insert(allowed.end(), kDimensionKeys.begin(), kDimensionKeys.end());
  t.reject_unknown_keys(allowed);

  ModelSection out;
  const auto preset = t.get_choice("preset", {"vit_b", "vit_l", "vit_h", "custom"}, "vit_b");
  if (preset != "custom") {
    out.sam = model::sam_preset(preset);
    for (const auto& key : kDimensionKeys)
      if (t.has(key)) t.fail(key, "dimensions are fixed by preset '" + preset + "'; use preset = \"custom\"");
  } else if (checks == Checks::kWholeRun) {
    // A forgotten key would otherwise take ViT-B's value, a model nobody asked for.
    for (const auto& key : kDimensionKeys)
      if (!t.has(key) && key != "iou_head_depth" && key != "attention_downsample_rate")
        t.fail(key, "missing: preset = \"custom\" takes every dimension from [model] (docs/config.md)");
  }
  auto& c = out.sam;
  c.preset = preset;
  c.image_size = t.get_int("image_size", c.image_size);
  c.patch_size = t.get_int("patch_size", c.patch_size);
  c.encoder_embed_dim = t.get_int("encoder_embed_dim", c.encoder_embed_dim);
  c.encoder_depth = t.get_int("encoder_depth", c.encoder_depth);
  c.encoder_num_heads = t.get_int("encoder_num_heads", c.encoder_num_heads);
  c.window_size = t.get_int("window_size", c.window_size);
  c.encoder_global_attn_indexes = t.get_int_list("encoder_global_attn_indexes", c.encoder_global_attn_indexes);
  c.mlp_ratio = t.get_double("mlp_ratio", c.mlp_ratio);
  c.prompt_embed_dim = t.get_int("prompt_embed_dim", c.prompt_embed_dim);
  c.mask_in_chans = t.get_int("mask_in_chans", c.mask_in_chans);
  c.decoder_depth = t.get_int("decoder_depth", c.decoder_depth);
  c.decoder_mlp_dim = t.get_int("decoder_mlp_dim", c.decoder_mlp_dim);
  c.decoder_num_heads = t.get_int("decoder_num_heads", c.decoder_num_heads);
  c.iou_head_hidden_dim = t.get_int("iou_head_hidden_dim", c.iou_head_hidden_dim);
  c.iou_head_depth = t.get_int("iou_head_depth", c.iou_head_depth);
  c.num_multimask_outputs = t.get_int("num_multimask_outputs", c.num_multimask_outputs);
  c.attention_downsample_rate = t.get_int("attention_downsample_rate", c.attention_downsample_rate);
  if (const auto problem = c.problem(); problem && checks == Checks::kWholeRun) {
    // Of the keys a rule relates, the one a --set changed is the likelier culprit.
    const auto culprit = std::find_if(problem->keys.begin(), problem->keys.end(),
                                      [&](const std::string& key) { return t.overridden(key); });
    t.fail(culprit != problem->keys.end() ? *culprit : problem->keys.front(), problem->message);
  }
  out.checkpoint = t.get_string("checkpoint", "");
  out.checkpoint_key = t.get_string("checkpoint_key", "");
  return out;
}

ModelSection load_model_section(const std::string& config_path) {
  const auto root = parse_toml_file(config_path);
  TomlSection top(&root, config_path, "");
  // A run config may leave [model] out (vit_b); a model's own config names its dimensions.
  if (!top.has("model")) throw ConfigError(config_path + ": no [model] table");
  return parse_model_section(top.section("model"));
}

}  // namespace sparser::config

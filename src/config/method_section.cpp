#include "config/method_section.h"

namespace sparser::config {

namespace {

using methods::MethodConfig;
using methods::MethodName;

int64_t positive_int(const TomlSection& t, const std::string& key, int64_t fallback) {
  const auto v = t.get_int(key, fallback);
  if (v <= 0) t.fail(key, "must be positive (got " + std::to_string(v) + ")");
  return v;
}

std::vector<std::string> qkv_targets(const TomlSection& t, const std::string& key,
                                     const std::vector<std::string>& fallback) {
  auto targets = t.get_string_list(key, fallback);
  if (targets.empty()) t.fail(key, "needs at least one target");
  for (const auto& target : targets)
    if (target != "q" && target != "k" && target != "v")
      t.fail(key, "'" + target + "' is not one of: q, k, v");
  return targets;
}

}  // namespace

methods::MethodConfig parse_method_section(const TomlSection& t) {
  MethodConfig c;
  const auto name = t.get_choice("name", {"zero_shot", "decoder_only", "parser", "lora", "adapter", "fact"}, "parser");
  const std::vector<std::string> common{"name", "train_prompt_encoder"};
  auto allow = [&](std::vector<std::string> own) {
    own.insert(own.end(), common.begin(), common.end());
    t.reject_unknown_keys(own);
  };
  c.train_prompt_encoder = t.get_bool("train_prompt_encoder", false);

  if (name == "zero_shot") {
    c.name = MethodName::ZeroShot;
    allow({});
    if (c.train_prompt_encoder) t.fail("train_prompt_encoder", "zero_shot trains nothing");
  } else if (name == "decoder_only") {
    c.name = MethodName::DecoderOnly;
    allow({});
  } else if (name == "parser") {
    c.name = MethodName::Parser;
    allow({"layers", "train"});
    c.parser_layers = t.get_string_list("layers", std::vector<std::string>{"conv"});
    if (c.parser_layers.empty()) t.fail("layers", "needs at least one entry");
    const auto train = t.get_choice("train", {"coefficients", "bases", "both"}, "coefficients");
    c.parser_train = train == "coefficients" ? methods::ParserTrain::Coefficients
                     : train == "bases"      ? methods::ParserTrain::Bases
                                             : methods::ParserTrain::Both;
  } else if (name == "lora") {
    c.name = MethodName::Lora;
    allow({"rank", "alpha", "targets"});
    c.lora_rank = positive_int(t, "rank", c.lora_rank);
    // alpha defaults to the rank: scale 1, as SAMed (which has no alpha).
    c.lora_alpha = t.get_double("alpha", static_cast<double>(c.lora_rank));
    c.lora_targets = qkv_targets(t, "targets", c.lora_targets);
  } else if (name == "adapter") {
    c.name = MethodName::Adapter;
    allow({"bottleneck"});
    c.adapter_bottleneck = positive_int(t, "bottleneck", c.adapter_bottleneck);
  } else {
    c.name = MethodName::Fact;
    allow({"rank", "scale", "targets"});
    c.fact_rank = positive_int(t, "rank", c.fact_rank);
    c.fact_scale = t.get_double("scale", c.fact_scale);
    auto targets = t.get_string_list("targets", c.fact_targets);
    for (const auto& target : targets)
      if (target != "q" && target != "k" && target != "v" && target != "proj" && target != "lin1" && target != "lin2")
        t.fail("targets", "'" + target + "' is not one of: q, k, v, proj, lin1, lin2");
    if (targets.empty()) t.fail("targets", "needs at least one target");
    c.fact_targets = targets;
  }
  return c;
}

}  // namespace sparser::config

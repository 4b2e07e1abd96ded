#include "config/method_section.h"

#include <algorithm>
#include <cmath>

namespace sparser::config {

namespace {

using methods::MethodConfig;
using methods::MethodName;

int64_t positive_int(const TomlSection& t, const std::string& key, int64_t fallback) {
  const auto v = t.get_int(key, fallback);
  if (v <= 0) t.fail(key, "must be positive (got " + std::to_string(v) + ")");
  return v;
}

double positive_double(const TomlSection& t, const std::string& key, double fallback) {
  const auto v = t.get_double(key, fallback);
  if (!(v > 0 && std::isfinite(v))) t.fail(key, "must be a finite number > 0");
  return v;
}

// A non-empty list of distinct entries, each one of `allowed`.
std::vector<std::string> targets_of(const TomlSection& t, const std::string& key,
                                    const std::vector<std::string>& fallback, const std::vector<std::string>& allowed) {
  auto targets = t.get_string_list(key, fallback);
  if (targets.empty()) t.fail(key, "needs at least one target");
  std::string choices;
  for (const auto& a : allowed) choices += (choices.empty() ? "" : ", ") + a;
  for (size_t i = 0; i < targets.size(); ++i) {
    if (std::find(allowed.begin(), allowed.end(), targets[i]) == allowed.end())
      t.fail(key, "'" + targets[i] + "' is not one of: " + choices);
    if (std::find(targets.begin(), targets.begin() + i, targets[i]) != targets.begin() + i)
      t.fail(key, "'" + targets[i] + "' is listed twice");
  }
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
    c.lora_alpha = positive_double(t, "alpha", static_cast<double>(c.lora_rank));
    c.lora_targets = targets_of(t, "targets", c.lora_targets, {"q", "k", "v"});
  } else if (name == "adapter") {
    c.name = MethodName::Adapter;
    allow({"bottleneck"});
    c.adapter_bottleneck = positive_int(t, "bottleneck", c.adapter_bottleneck);
  } else {
    c.name = MethodName::Fact;
    allow({"rank", "scale", "dropout", "targets"});
    c.fact_rank = positive_int(t, "rank", c.fact_rank);
    c.fact_scale = positive_double(t, "scale", c.fact_scale);
    c.fact_dropout = t.get_double("dropout", c.fact_dropout);
    if (!(c.fact_dropout >= 0 && c.fact_dropout < 1)) t.fail("dropout", "must be in [0, 1)");
    c.fact_targets = targets_of(t, "targets", c.fact_targets, {"q", "k", "v", "proj", "lin1", "lin2"});
  }
  return c;
}

toml::table method_table(const MethodConfig& c) {
  toml::table t{{"name", methods::to_string(c.name)}, {"train_prompt_encoder", c.train_prompt_encoder}};
  switch (c.name) {
    case MethodName::ZeroShot:
    case MethodName::DecoderOnly: break;
    case MethodName::Parser:
      t.insert("layers", to_toml_array(c.parser_layers));
      t.insert("train", methods::to_string(c.parser_train));
      break;
    case MethodName::Lora:
      t.insert("rank", c.lora_rank);
      t.insert("alpha", c.lora_alpha);
      t.insert("targets", to_toml_array(c.lora_targets));
      break;
    case MethodName::Adapter: t.insert("bottleneck", c.adapter_bottleneck); break;
    case MethodName::Fact:
      t.insert("rank", c.fact_rank);
      t.insert("scale", c.fact_scale);
      t.insert("dropout", c.fact_dropout);
      t.insert("targets", to_toml_array(c.fact_targets));
      break;
  }
  return t;
}

}  // namespace sparser::config

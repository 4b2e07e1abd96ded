// The config layer: the [method] table both ways.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/method_section.h"
#include "config/run_config.h"

namespace config = sparser::config;
namespace methods = sparser::methods;

namespace {

const std::string kSource = "test.toml";

}  // namespace

namespace {

void expect_same_method(const methods::MethodConfig& a, const methods::MethodConfig& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.parser_layers, b.parser_layers);
  EXPECT_EQ(a.parser_train, b.parser_train);
  EXPECT_EQ(a.lora_rank, b.lora_rank);
  EXPECT_EQ(a.lora_alpha, b.lora_alpha);
  EXPECT_EQ(a.lora_targets, b.lora_targets);
  EXPECT_EQ(a.adapter_bottleneck, b.adapter_bottleneck);
  EXPECT_EQ(a.fact_rank, b.fact_rank);
  EXPECT_EQ(a.fact_scale, b.fact_scale);
  EXPECT_EQ(a.fact_dropout, b.fact_dropout);
  EXPECT_EQ(a.fact_targets, b.fact_targets);
  EXPECT_EQ(a.train_prompt_encoder, b.train_prompt_encoder);
}

// One config per method, every key of the method away from its default.
std::vector<std::string> method_tables_to_round_trip() {
  return {"{ name = \"zero_shot\" }",
          "{ name = \"decoder_only\", train_prompt_encoder = true }",
          "{ name = \"parser\", layers = [\"transformer\", \"image_encoder.neck.0\"], train = \"both\" }",
          "{ name = \"parser\", train = \"bases\", train_prompt_encoder = true }",
          "{ name = \"lora\", rank = 7, alpha = 2.5, targets = [\"k\"], train_prompt_encoder = true }",
          "{ name = \"adapter\", bottleneck = 3 }",
          "{ name = \"fact\", rank = 3, scale = 0.3, dropout = 0.25, targets = [\"proj\", \"lin2\"] }"};
}

}  // namespace

TEST(MethodTable, ResolvedConfigGivesTheSameMethodBack) {
  for (const auto& method : method_tables_to_round_trip()) {
    SCOPED_TRACE(method);
    const auto written = config::parse_run_config(toml::parse("method = " + method, kSource), kSource);
    const std::string resolved = "resolved.toml";
    const auto read_back = config::parse_run_config(toml::parse(config::to_toml(written), resolved), resolved);
    expect_same_method(read_back.method, written.method);
  }
}

TEST(MethodTable, HoldsEveryKeyOfTheMethod) {
  methods::MethodConfig fact;
  fact.name = methods::MethodName::Fact;
  fact.fact_dropout = 0.3;
  const auto table = config::method_table(fact);
  EXPECT_EQ(table["name"].value<std::string>(), "fact");
  EXPECT_EQ(table["dropout"].value<double>(), 0.3);
  EXPECT_EQ(table["train_prompt_encoder"].value<bool>(), false);
  std::vector<std::string> keys;
  for (const auto& [key, value] : table) keys.emplace_back(key.str());
  EXPECT_EQ(keys, (std::vector<std::string>{"dropout", "name", "rank", "scale", "targets", "train_prompt_encoder"}));
}

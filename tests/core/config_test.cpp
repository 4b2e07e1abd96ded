// The config layer: --set overrides, the [method]
// table both ways.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/method_section.h"
#include "config/run_config.h"
#include "config/sweep.h"

namespace config = sparser::config;
namespace methods = sparser::methods;

namespace {

const std::string kSource = "test.toml";

// The runs of a config text, with overrides applied as sparser_run applies them.
std::vector<config::SweepRun> runs_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
  auto root = toml::parse(text, kSource);
  config::apply_overrides(root, overrides);
  return config::expand_runs(root, kSource);
}

// The ConfigError of runs_of (empty, and a test failure, when there is none).
std::string error_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
  try {
    runs_of(text, overrides);
  } catch (const config::ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for:\n" << text;
  return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

const std::string kMethodSweep =
    "[sweep]\n"
    "method = [{ name = \"decoder_only\" }, { name = \"parser\", layers = \"conv\" }]\n"
    "\"train.lr\" = [0.1, 0.2]\n";

TEST(Overrides, ErrorsNameTheOverride) {
  auto parse_with = [](const std::string& text, const std::vector<std::string>& overrides) -> std::string {
    auto root = toml::parse(text, kSource);
    try {
      config::apply_overrides(root, overrides);
      config::parse_run_config(root, kSource);
    } catch (const config::ConfigError& e) {
      return e.what();
    }
    return "";
  };
  const std::string file = "[train]\nepochs = 2\n";
  EXPECT_EQ(parse_with(file, {"train.lr=abc"}), "--set train.lr=abc: train.lr: expected a number");
  EXPECT_EQ(parse_with(file, {"train.epochs=1.5"}), "--set train.epochs=1.5: train.epochs: expected an integer");
  EXPECT_EQ(parse_with(file, {"method={ name = \"lora\", rank = 0 }"}),
            "--set method={ name = \"lora\", rank = 0 }: method.rank: must be positive (got 0)");
  EXPECT_TRUE(contains(parse_with(file, {"train.warmup=3"}), "--set train.warmup=3: train.warmup: unknown key"));
  EXPECT_EQ(parse_with(file, {"train..lr=1"}), "--set train..lr=1: 'train..lr' is not a key such as train.lr");
  EXPECT_EQ(parse_with(file, {"train.epochs.x=1"}), "--set train.epochs.x=1: 'train.epochs' is not a table");
  EXPECT_EQ(parse_with(file, {"train.lr"}), "--set train.lr: expected section.key=value");
  // Values from the file still name their line.
  EXPECT_EQ(parse_with("[train]\nepochs = \"two\"\n", {"train.lr=0.1"}),
            "test.toml:2: train.epochs: expected an integer");
  // Through the sweep expansion too.
  EXPECT_EQ(error_of(kMethodSweep, {"train.epochs=x"}), "--set train.epochs=x: train.epochs: expected an integer");
}

TEST(Overrides, BareWordsAreStrings) {
  auto root = toml::parse("", kSource);
  config::apply_overrides(root, {"run.dataset=coco val/2017 'x' \"y\"", "method.name=lora", "method.targets=[\"k\"]"});
  const auto c = config::parse_run_config(root, kSource);
  EXPECT_EQ(c.run.dataset, "coco val/2017 'x' \"y\"");
  EXPECT_EQ(c.method.name, methods::MethodName::Lora);
  EXPECT_EQ(c.method.lora_targets, std::vector<std::string>{"k"});
}

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

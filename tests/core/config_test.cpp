// The config layer: --set overrides, [sweep] expansion and run ids, the [method]
// table both ways.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "config/config_change.h"
#include "config/method_section.h"
#include "config/run_config.h"
#include "config/sweep.h"

namespace config = sparser::config;
namespace methods = sparser::methods;

namespace {

const std::string kSource = "test.toml";

// A config text as parsed, with a train split where it names none: a config that trains
// needs one, and the tests here are about other keys.
toml::table parsed(const std::string& text) {
  auto root = toml::parse(text, kSource);
  const auto data = config::key_parent(root, {"data", "train"});
  if (data.table && !data.table->contains("train")) data.table->insert("train", "train.manifest.json");
  return root;
}

// The runs of a config text, with overrides applied as sparser_run applies them.
std::vector<config::SweepRun> runs_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
  auto root = parsed(text);
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

std::vector<std::string> ids_of(const std::vector<config::SweepRun>& runs) {
  std::vector<std::string> ids;
  for (const auto& run : runs) ids.push_back(run.id);
  return ids;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST(Sweep, KeyThroughAValueIsAnErrorNamingFileLineAndKey) {
  const auto through_a_string = error_of("[run]\nname = \"t\"\n\n[sweep]\n\"run.name.x\" = [1, 2]\n");
  EXPECT_EQ(through_a_string, "test.toml:5: sweep.run.name.x: 'run.name' is not a table, so it has no key 'x'");
  // The value on the way may come from another entry of the sweep.
  const auto through_an_entry = error_of("[sweep]\n\"train.lr\" = [1e-3]\n\"train.lr.x\" = [0.1]\n");
  EXPECT_EQ(through_an_entry, "test.toml:3: sweep.train.lr.x: 'train.lr' is not a table, so it has no key 'x'");
}

TEST(Sweep, AnErrorInASweptValueNamesTheEntryItCameFrom) {
  EXPECT_EQ(error_of("[run]\nname = \"t\"\n\n[sweep]\n\"train.lr\" = [0.1, \"fast\"]\n"),
            "run parser-lr=fast-seed=1 (values of test.toml:5: sweep.train.lr[1]): "
            "test.toml: train.lr: expected a number");
}

TEST(Sweep, EntriesThatCannotBeSweptAreErrors) {
  EXPECT_EQ(error_of("[sweep]\n\"run.seeds\" = [[1]]\n"),
            "test.toml:2: sweep.run.seeds: seeds come from run.seeds, not the sweep");
  EXPECT_TRUE(contains(error_of("[sweep]\nrun = [{ name = \"a\" }]\n"), "test.toml:2: sweep.run: sweep single keys"));
  // A whole table would replace the file's (data.train, epochs, ...) with the entry's few keys.
  EXPECT_EQ(error_of("[sweep]\ndata = [{ max_instances = 1 }]\n"),
            "test.toml:2: sweep.data: sweep single keys of [data] (\"data.key\" = [...]); only [method] can be swept "
            "as whole tables");
  EXPECT_TRUE(contains(error_of("[sweep]\nmethod = [\"lora\"]\n"), "test.toml:2: sweep.method: entries must be"));
  EXPECT_TRUE(contains(error_of("[sweep]\n\"train..lr\" = [1]\n"), "sweep.train..lr: expected a dotted key"));
  EXPECT_TRUE(contains(error_of("[sweep]\n\"train.\" = [1]\n"), "sweep.train.: expected a dotted key"));
}

TEST(Sweep, IdsAreStableAndReadable) {
  const auto runs = runs_of(
      "[run]\nseeds = [1, 2]\n[sweep]\nmethod = [{ name = \"decoder_only\" }, { name = \"lora\", rank = 8 }]\n"
      "\"train.lr\" = [1e-3, 1e-4]\n");
  EXPECT_EQ(ids_of(runs), (std::vector<std::string>{
                              "decoder_only-lr=0.001-seed=1", "decoder_only-lr=0.001-seed=2",
                              "lora-rank=8-lr=0.001-seed=1", "lora-rank=8-lr=0.001-seed=2",
                              "decoder_only-lr=0.0001-seed=1", "decoder_only-lr=0.0001-seed=2",
                              "lora-rank=8-lr=0.0001-seed=1", "lora-rank=8-lr=0.0001-seed=2"}));
  EXPECT_EQ(runs[2].group["method.rank"], "8");
  EXPECT_EQ(runs[2].config.method.lora_rank, 8);
  EXPECT_DOUBLE_EQ(runs[7].config.train.lr, 1e-4);
}

TEST(Sweep, FloatsInIdsAreTheShortestTextThatReadsBack) {
  // toml++ alone printed 3e-4 as 0.00029999999999999997 and 5e-5 as 5.0000000000000002e-05.
  const auto runs =
      runs_of("[sweep]\n\"train.lr\" = [3e-4, 0.1, 5e-5, 1e-3, 2.0, 1.5e20, 0.25, 123456.789, 1e16, 0.0001]\n");
  EXPECT_EQ(ids_of(runs),
            (std::vector<std::string>{"parser-lr=0.0003-seed=1", "parser-lr=0.1-seed=1", "parser-lr=5e-05-seed=1",
                                      "parser-lr=0.001-seed=1", "parser-lr=2.0-seed=1", "parser-lr=1.5e+20-seed=1",
                                      "parser-lr=0.25-seed=1", "parser-lr=123456.789-seed=1",
                                      "parser-lr=1e+16-seed=1", "parser-lr=0.0001-seed=1"}));
  EXPECT_EQ(runs[0].group["train.lr"], "0.0003");
}

TEST(Sweep, IdsAreSafeDirectoryNames) {
  const auto runs = runs_of("[sweep]\n\"run.dataset\" = [\"coco/val 2017\", \"a\\\\b\\tc\", \"..\"]\n");
  EXPECT_EQ(ids_of(runs), (std::vector<std::string>{"parser-dataset=coco_val_2017-seed=1",
                                                    "parser-dataset=a_b_c-seed=1", "parser-dataset=..-seed=1"}));
  // The values themselves are kept.
  EXPECT_EQ(runs[0].config.run.dataset, "coco/val 2017");
  EXPECT_EQ(runs[0].group["run.dataset"], "coco/val 2017");
}

TEST(Sweep, DuplicateIdsAreErrorsNamingTheIdAndBothPositions) {
  EXPECT_EQ(error_of("[run]\nseeds = [1, 2, 1]\n"),
            "test.toml: runs 0 and 2 would both write run id 'parser-seed=1' (run.seeds[0] and run.seeds[2]); "
            "make these values distinct (docs/config.md, \"Run ids\")");
  // Two values with the same text.
  const auto same_text = error_of("[sweep]\n\"train.lr\" = [1e-3, 0.001]\n");
  EXPECT_TRUE(contains(same_text, "runs 0 and 1 would both write run id 'parser-lr=0.001-seed=1' "
                                  "(sweep.\"train.lr\"[0], run.seeds[0] and sweep.\"train.lr\"[1], run.seeds[0])"))
      << same_text;
  // Values that differ only in characters a directory name cannot hold.
  const auto made_safe = error_of("[sweep]\n\"run.dataset\" = [\"a/b\", \"a b\"]\n");
  EXPECT_TRUE(contains(made_safe, "would both write run id 'parser-dataset=a_b-seed=1'")) << made_safe;
  const auto same_method = error_of("[sweep]\nmethod = [{ name = \"lora\" }, { name = \"lora\" }]\n");
  EXPECT_TRUE(contains(same_method, "'lora-seed=1' (sweep.method[0], run.seeds[0] and sweep.method[1]")) << same_method;
}

TEST(Sweep, EveryRunKnowsAllConfiguredSeeds) {
  const auto runs = runs_of("[run]\nseeds = [3, 1, 2]\n[sweep]\n\"train.lr\" = [0.1, 0.2]\n");
  ASSERT_EQ(runs.size(), 6u);
  for (const auto& run : runs) {
    EXPECT_EQ(run.all_seeds, (std::vector<int64_t>{3, 1, 2})) << run.id;
    EXPECT_EQ(run.config.run.seeds, std::vector<int64_t>{run.seed}) << run.id;
  }
  EXPECT_EQ(runs_of("[run]\nseeds = [3, 1, 2]\n", {"run.seeds=[7, 8]"}).front().all_seeds,
            (std::vector<int64_t>{7, 8}));
}

const std::string kMethodSweep =
    "[sweep]\n"
    "method = [{ name = \"decoder_only\" }, { name = \"parser\", layers = \"conv\" }]\n"
    "\"train.lr\" = [0.1, 0.2]\n";

TEST(Overrides, OfAKeyTheSweepSetsAreErrors) {
  // Each entry replaces the whole [method]: the override would be lost in every run.
  const auto inside_a_table = error_of(kMethodSweep, {"method.layers=transformer"});
  EXPECT_EQ(inside_a_table,
            "--set method.layers=transformer: the sweep sets method in every run (test.toml:2: sweep.method), which "
            "would replace this value. Change the sweep instead: edit that entry, or override it, e.g. --set "
            "'sweep.method=[...]' (docs/config.md, \"--set and [sweep]\")");
  const auto the_key = error_of(kMethodSweep, {"train.lr=0.5"});
  EXPECT_TRUE(
      contains(the_key, "--set train.lr=0.5: the sweep sets train.lr in every run (test.toml:3: sweep.train.lr)"))
      << the_key;
  EXPECT_TRUE(contains(the_key, "--set 'sweep.\"train.lr\"=[...]'")) << the_key;
  // A table holding a swept key.
  const auto holding = error_of(kMethodSweep, {"train={ lr = 0.5, epochs = 2 }"});
  EXPECT_TRUE(contains(holding, "--set train={ lr = 0.5, epochs = 2 }: the sweep sets train.lr")) << holding;
}

TEST(Overrides, OfOtherKeysApplyToEveryRun) {
  const auto runs = runs_of(kMethodSweep, {"train.epochs=3", "train={ epochs = 4 }", "data.box_jitter=7"});
  ASSERT_EQ(runs.size(), 4u);
  for (const auto& run : runs) {
    EXPECT_EQ(run.config.train.epochs, 4) << run.id;
    EXPECT_EQ(run.config.data.box_jitter, 7) << run.id;
  }
  EXPECT_DOUBLE_EQ(runs[3].config.train.lr, 0.2) << "the sweep's own values stay";
}

TEST(Overrides, CanReplaceTheSweepsEntries) {
  const auto runs = runs_of(kMethodSweep, {"sweep.method=[{ name = \"parser\", layers = \"transformer\" }]",
                                           "sweep.\"train.lr\"=[0.5]", "train.epochs=1"});
  EXPECT_EQ(ids_of(runs), std::vector<std::string>{"parser-layers=transformer-lr=0.5-seed=1"});
  EXPECT_EQ(runs[0].config.method.parser_layers, std::vector<std::string>{"transformer"});
  EXPECT_DOUBLE_EQ(runs[0].config.train.lr, 0.5);
  // Without the sweep, the file's own tables take the overrides.
  const auto unswept = runs_of(kMethodSweep, {"sweep={}", "method.layers=both"});
  EXPECT_EQ(ids_of(unswept), std::vector<std::string>{"parser-seed=1"});
  EXPECT_EQ(unswept[0].config.method.parser_layers, std::vector<std::string>{"both"});
}

TEST(Overrides, ErrorsNameTheOverride) {
  auto parse_with = [](const std::string& text, const std::vector<std::string>& overrides) -> std::string {
    auto root = parsed(text);
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
  // A misspelt section is a table the override made: the error names the override too.
  EXPECT_TRUE(contains(parse_with(file, {"trainn.lr=1"}), "--set trainn.lr=1: trainn: unknown key")) << file;
  // Values from the file still name their line.
  EXPECT_EQ(parse_with("[train]\nepochs = \"two\"\n", {"train.lr=0.1"}),
            "test.toml:2: train.epochs: expected an integer");
  // Through the sweep expansion too.
  EXPECT_EQ(error_of(kMethodSweep, {"train.epochs=x"}), "--set train.epochs=x: train.epochs: expected an integer");
}

TEST(Overrides, BareWordsAreStrings) {
  auto root = parsed("");
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
    const auto written = config::parse_run_config(parsed("method = " + method), kSource);
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

TEST(TrainSection, PromptsPerPassDefaultsToTwoAndRefusesNegatives) {
  EXPECT_EQ(config::parse_run_config(parsed("[train]\nepochs = 1\n"), kSource).train.prompts_per_pass, 2);
  EXPECT_EQ(config::parse_run_config(parsed("[train]\nprompts_per_pass = 0\n"), kSource)
                .train.prompts_per_pass,
            0);
  try {
    config::parse_run_config(parsed("[train]\nprompts_per_pass = -2\n"), kSource);
    ADD_FAILURE() << "no error";
  } catch (const config::ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), "test.toml:2: train.prompts_per_pass: must be >= 0 (got -2)");
  }
}

TEST(ConfigChange, TheTrunkCachesUseChangesResultsOnlyWithFp16Storage) {
  const auto changes = [](const std::string& before, const std::string& after) {
    return config::result_changes(toml::parse("[train]\n" + before), toml::parse("[train]\n" + after));
  };
  // fp32 storage gives the uncached results exactly: where and whether it caches is free.
  EXPECT_TRUE(changes("trunk_cache = \"memory\"", "trunk_cache = \"off\"").empty());
  EXPECT_TRUE(changes("trunk_cache_dtype = \"fp32\"\ntrunk_cache_memory_gb = 1.0",
                      "trunk_cache_dtype = \"fp32\"\ntrunk_cache_memory_gb = 0.0").empty());
  // fp16 storage rounds the features: cached and uncached runs differ.
  const auto fp16 = changes("trunk_cache_dtype = \"fp16\"\ntrunk_cache = \"memory\"",
                            "trunk_cache_dtype = \"fp16\"\ntrunk_cache = \"off\"");
  ASSERT_EQ(fp16.size(), 1u);
  EXPECT_EQ(fp16[0].rfind("train.trunk_cache: ", 0), 0u) << fp16[0];
  EXPECT_TRUE(changes("trunk_cache_dtype = \"fp16\"\ntrunk_cache_dir = \"a\"",
                      "trunk_cache_dtype = \"fp16\"\ntrunk_cache_dir = \"b\"").empty());
  EXPECT_EQ(changes("trunk_cache_dtype = \"fp32\"", "trunk_cache_dtype = \"fp16\"").size(), 1u);
}

namespace {

// The ConfigError of parsing `text` as one run's config, as written (no train split added).
std::string run_config_error(const std::string& text) {
  try {
    config::parse_run_config(toml::parse(text, kSource), kSource);
  } catch (const config::ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for:\n" << text;
  return "";
}

// A config with the sam_tiny fixture's [model] table, `line` replaced by `replacement`.
std::string tiny_model(const std::string& line = "", const std::string& replacement = "") {
  std::string text =
      "[data]\ntrain = \"t.json\"\n[model]\npreset = \"custom\"\nimage_size = 128\npatch_size = 16\n"
      "encoder_embed_dim = 48\nencoder_depth = 4\nencoder_num_heads = 4\nwindow_size = 4\n"
      "encoder_global_attn_indexes = [1, 3]\nmlp_ratio = 4.0\nprompt_embed_dim = 32\nmask_in_chans = 16\n"
      "decoder_depth = 2\ndecoder_mlp_dim = 64\ndecoder_num_heads = 4\niou_head_hidden_dim = 32\n"
      "num_multimask_outputs = 3\n";
  if (!line.empty()) text.replace(text.find(line), line.size(), replacement);
  return text;
}

}  // namespace

TEST(RunConfig, ARunThatTrainsNeedsATrainSplit) {
  const auto runs_as_written = [](const std::string& text) { return config::expand_runs(toml::parse(text), kSource); };
  try {
    runs_as_written("[train]\nepochs = 2\n");
    ADD_FAILURE() << "no error";
  } catch (const config::ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              "run parser-seed=1: test.toml: data.train: missing: method parser trains for 2 epoch(s) and needs a "
              "train manifest (sparser_prep writes <split>.manifest.json)");
  }
  // Evaluating only needs none, and a config that only describes a model (sparser_export's) neither.
  EXPECT_EQ(runs_as_written("[train]\nepochs = 0\n").size(), 1u);
  EXPECT_EQ(runs_as_written("[method]\nname = \"zero_shot\"\n").size(), 1u);
  EXPECT_NO_THROW(config::parse_run_config(toml::parse("[train]\nepochs = 2\n"), kSource));
}

TEST(RunConfig, EmptyMetricsAndInfiniteNumbersAreRefused) {
  // No metric left nothing to select the best epoch by; the run crashed.
  EXPECT_EQ(error_of("[eval]\nmetrics = []\n"),
            "test.toml:2: eval.metrics: needs at least one metric (the first one selects the best epoch)");
  EXPECT_EQ(error_of("[train]\nlr = inf\n"), "test.toml:2: train.lr: must be a finite number > 0");
  EXPECT_EQ(error_of("[train]\nweight_decay = inf\n"), "test.toml:2: train.weight_decay: must be a finite number >= 0");
  EXPECT_EQ(error_of("[train]\nloss_dice = inf\n"), "test.toml:2: train.loss_dice: must be a finite number >= 0");
  EXPECT_EQ(error_of("[method]\nname = \"lora\"\nalpha = inf\n"),
            "test.toml:3: method.alpha: must be a finite number > 0");
}

TEST(RunConfig, ParserLayerPatternsMustMatchTheModelsImageEncoder) {
  EXPECT_EQ(error_of("[method]\nname = \"parser\"\nlayers = [\"image_encoder.blocks.*.attn.qkv\", \"nonexistent\"]\n"),
            "test.toml:3: method.layers: 'nonexistent' matches no Linear/Conv2d layer of this model's image encoder "
            "(list them with: sparser_inspect --config test.toml)");
  // vit_b has blocks 0..11; vit_l has a block 12.
  const std::string block_12 = "[method]\nname = \"parser\"\nlayers = [\"image_encoder.blocks.12.mlp.lin1\"]\n";
  EXPECT_TRUE(contains(error_of(block_12), "'image_encoder.blocks.12.mlp.lin1' matches no"));
  EXPECT_EQ(runs_of(block_12 + "[model]\npreset = \"vit_l\"\n").size(), 1u);
  // The mask decoder trains whole: its layers are no PARSER target. In a sweep, the run is named
  // before a single run of the grid trains.
  const auto swept = error_of("[sweep]\n\"method.layers\" = [[\"conv\"], [\"mask_decoder.**\"]]\n");
  EXPECT_TRUE(contains(swept, "run parser-layers=mask_decoder.**-seed=1 (values of test.toml:2: "
                              "sweep.method.layers[1]): test.toml: method.layers: 'mask_decoder.**' matches no"))
      << swept;
}

TEST(ModelSection, CustomModelsNameEveryDimension) {
  // A forgotten key took ViT-B's value.
  EXPECT_EQ(run_config_error("[data]\ntrain = \"t.json\"\n[model]\npreset = \"custom\"\nimage_size = 128\n"),
            "test.toml:3: model.patch_size: missing: preset = \"custom\" takes every dimension from [model] "
            "(docs/config.md)");
  // iou_head_depth and attention_downsample_rate have the official defaults.
  EXPECT_NO_THROW(config::parse_run_config(toml::parse(tiny_model()), kSource));
}

TEST(ModelSection, InconsistentDimensionsNameTheirLine) {
  EXPECT_EQ(run_config_error(tiny_model("mlp_ratio = 4.0", "mlp_ratio = 0.0")),
            "test.toml:12: model.mlp_ratio: must be a finite number > 0");
  EXPECT_EQ(run_config_error(tiny_model("encoder_num_heads = 4", "encoder_num_heads = 5")),
            "test.toml:9: model.encoder_num_heads: encoder_num_heads 5 does not divide encoder_embed_dim 48");
  EXPECT_EQ(run_config_error(tiny_model("[1, 3]", "[1, 4]")),
            "test.toml:11: model.encoder_global_attn_indexes: encoder_global_attn_indexes entry 4 is outside [0, "
            "encoder_depth = 4)");
  // Of two keys that do not fit, the one an override changed is named, not the other's line.
  const auto overridden = [](const std::string& override_text) {
    auto root = toml::parse(tiny_model(), kSource);
    config::apply_overrides(root, {override_text});
    try {
      config::parse_run_config(root, kSource);
    } catch (const config::ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(overridden("model.image_size=100"),
            "--set model.image_size=100: model.image_size: image_size 100 is not a multiple of patch_size 16");
  EXPECT_EQ(overridden("model.patch_size=24"),
            "--set model.patch_size=24: model.patch_size: image_size 128 is not a multiple of patch_size 24");
  EXPECT_EQ(overridden("model.encoder_depth=2"),
            "--set model.encoder_depth=2: model.encoder_depth: encoder_global_attn_indexes entry 3 is outside [0, "
            "encoder_depth = 2)");
}

TEST(Sweep, TheFileIsCheckedKeyByKeyWhereTheSweepCompletesTheRuns) {
  // A custom dimension only the sweep gives; a layer pattern that fits the swept presets, not the
  // file's default vit_b. Each run is still checked whole.
  EXPECT_EQ(runs_of(tiny_model("encoder_depth = 4\n", "") + "[sweep]\n\"model.encoder_depth\" = [4, 6]\n").size(), 2u);
  const std::string block_20 = "[method]\nname = \"parser\"\nlayers = [\"image_encoder.blocks.20.attn.qkv\"]\n";
  EXPECT_EQ(runs_of(block_20 + "[sweep]\n\"model.preset\" = [\"vit_l\", \"vit_h\"]\n").size(), 2u);
  EXPECT_TRUE(contains(error_of(block_20 + "[sweep]\n\"model.preset\" = [\"vit_l\", \"vit_b\"]\n"),
                       "run parser-preset=vit_b-seed=1 (values of test.toml:5: sweep.model.preset[1]): test.toml: "
                       "method.layers: 'image_encoder.blocks.20.attn.qkv' matches no"));
  EXPECT_TRUE(contains(error_of(tiny_model("encoder_depth = 4\n", "") + "[sweep]\n\"train.lr\" = [0.1]\n"),
                       "model.encoder_depth: missing"));
}

TEST(ConfigFile, ADirectoryIsNoConfig) {
  // An ifstream reads a directory as an empty file: a run with every default.
  EXPECT_THROW(
      try { config::parse_toml_file(std::filesystem::temp_directory_path().string()); } catch (
          const config::ConfigError& e) {
        EXPECT_TRUE(contains(e.what(), ": is a directory, not a config file")) << e.what();
        throw;
      },
      config::ConfigError);
}

TEST(Sweep, EqualNumbersAreOneValue) {
  EXPECT_EQ(error_of("[sweep]\n\"train.lr\" = [1, 1.0]\n"),
            "test.toml:2: sweep.train.lr: entries 0 and 1 are the same number (1 and 1.0)");
  // Integers show in decimal, however written: equal ones give one id.
  EXPECT_EQ(ids_of(runs_of("[sweep]\n\"train.epochs\" = [0x10, 1_000]\n")),
            (std::vector<std::string>{"parser-epochs=16-seed=1", "parser-epochs=1000-seed=1"}));
  EXPECT_TRUE(contains(error_of("[sweep]\n\"train.epochs\" = [2, 0x2]\n"), "would both write run id 'parser-epochs=2"));
}

TEST(Sweep, AnIdLongerThanADirectoryNameIsAnError) {
  // Found when the grid is listed, not by the run's mkdir after a Slurm array was submitted.
  const auto error = error_of("[sweep]\n\"run.dataset\" = [\"" + std::string(250, 'd') + "\"]\n");
  EXPECT_TRUE(contains(error, "(sweep.\"run.dataset\"[0], run.seeds[0]) has 272 bytes, more than a directory name may "
                              "have (255)"))
      << error;
}

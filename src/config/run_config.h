#pragma once
// A run's whole configuration: [run], [model], [method], [data], [train], [eval]
// (and [sweep], expanded by sweep.h). Every key is documented in docs/config.md;
// unknown keys, wrong types and out-of-range values are errors naming file, line, key.
#include <cstdint>
#include <string>
#include <vector>

#include "config/model_section.h"
#include "methods/method_config.h"

namespace sparser::config {

struct RunSection {
  std::string name;            // default: the config file's stem
  std::string output_dir = "runs";
  std::vector<int64_t> seeds{1};
  std::string dataset;         // label used by the analysis tables; default: name
  int64_t threads = 0;         // intra-op threads per rank; 0 = cores / ranks on the node
  std::string device = "auto"; // auto (CUDA when available), cpu, cuda
  int64_t log_every = 10;      // steps between metrics.jsonl step records
};

struct DataSection {
  std::string train;  // manifest of the training split
  std::string val;    // manifest of the evaluation split
  int64_t max_instances = 4;   // instances (box prompts) per image and step
  int64_t box_jitter = 20;     // px, per box side, uniform in [0, box_jitter]
  bool shuffle = true;
  std::string uneven = "pad";  // pad or drop: how ranks get equal step counts
  int64_t workers = 2;         // decoding threads per rank
  int64_t prefetch = 8;        // samples prepared ahead
};

struct TrainSection {
  int64_t epochs = 10;
  int64_t images_per_step = 1;  // per rank; gradients accumulated over them
  std::string optimizer = "adam";  // adam, adamw
  double lr = 1e-4;
  double weight_decay = 0.0;
  std::string schedule = "constant";  // constant, cosine, step
  int64_t warmup_steps = 0;
  int64_t step_size = 0;   // schedule = step: epochs between decays
  double gamma = 0.1;      // schedule = step: decay factor
  double grad_clip = 0.0;  // max global L2 norm; 0 = off
  // Box prompts per forward/backward pass of the mask decoder; 0 = all of an image's.
  // Two: the prompt sets share the first layer's image-side work, and a pass's tensors
  // still fit the caches (ViT-B cached step ~7 % faster than with one, ~2 % than with four).
  int64_t prompts_per_pass = 2;
  double loss_bce = 1.0, loss_dice = 1.0, loss_focal = 1.0;
  std::string precision = "fp32";  // fp32, bf16 (the image encoder under autocast)
  int64_t checkpoint_every = 0;    // steps between checkpoints; 0 = end of each epoch
  // Frozen-trunk cache (docs/training.md): auto, off, memory, disk.
  std::string trunk_cache = "auto";
  std::string trunk_cache_dtype = "fp32";  // fp32, fp16
  double trunk_cache_memory_gb = 4.0;      // auto: memory when the estimate fits (per rank)
  double trunk_cache_disk_gb = 50.0;       // auto: else disk when the estimate fits (per rank)
  std::string trunk_cache_dir;             // "" = <run.output_dir>/.trunk_cache
};

struct EvalSection {
  int64_t every = 1;  // epochs between evaluations (and always after the last)
  std::vector<std::string> metrics{"miou", "f1"};  // of miou, f1, dsc
  bool per_class = false;                          // per-class DSC (medical data)
};

struct RunConfig {
  std::string source;  // the config file
  RunSection run;
  ModelSection model;
  methods::MethodConfig method;
  DataSection data;
  TrainSection train;
  EvalSection eval;
};

// Parses a config file after applying `overrides` (see apply_overrides). The [sweep]
// table is ignored here.
RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides = {});
// Parses an already loaded table (e.g. one point of a sweep).
// With Checks::kEachKey (the file of a sweep, before the sweep's values), only what each
// key holds is checked.
RunConfig parse_run_config(const toml::table& root, const std::string& source, Checks checks = Checks::kWholeRun);
// Whether the run trains: a method other than zero_shot, for at least one epoch (else it
// only evaluates).
bool trains(const RunConfig& config);
// For a config that is to be trained (a run of sparser_run, not one that only describes a
// model, as sparser_export reads): throws naming data.train when the run trains without it.
void require_train_split(const toml::table& root, const RunConfig& config, const std::string& source);
// Applies "section.key=value" overrides to a table: the key in TOML's dotted syntax
// (`sweep."method.layers"` is one key of [sweep]), the value in TOML syntax, bare words
// taken as strings. Errors about these values, here or when the table is parsed, name
// the override ("--set train.lr=abc: train.lr: expected a number").
void apply_overrides(toml::table& root, const std::vector<std::string>& overrides);
// The resolved configuration, every default filled in, as TOML.
std::string to_toml(const RunConfig& config);

}  // namespace sparser::config

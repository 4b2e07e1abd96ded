// One training run as the analysis sees it: the parts of summary.json,
// metrics.jsonl (schema 1), written by sparser_run, that tables
// and figures use.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <toml++/toml.h>

namespace sparser::analysis {

struct LossPoint {
  long step = 0;
  double loss = 0.0;
};

struct EvalPoint {
  int epoch = 0;
  std::map<std::string, double> metrics;
};

// Singular values of one PARSER-reconstructed layer, before and after fine-tuning.
struct SigmaLayer {
  std::string layer;
  std::vector<double> pretrained;
  std::vector<double> learned;
};

struct RunRecord {
  std::filesystem::path dir;
  std::string run_id;
  std::string experiment;
  std::string dataset;
  int seed = 0;
  std::string status;  // "completed", "failed", "running", "interrupted"
  std::string error;
  // Every swept/identifying key except the seed, values rendered as text.
  std::map<std::string, std::string> group;
  // Final metrics as fractions; per-class scores flattened to "per_class_dsc.<class>".
  std::map<std::string, double> final_metrics;
  // Every number of summary.json by its dotted path ("trainable.total",
  // "train_images_per_second", "final.miou"), for table columns beyond the metrics.
  std::map<std::string, double> summary_values;
  // summary.json "seeds": every seed the run's config asks for at this grid point.
  // Empty when the summary does not say (older runs).
  std::vector<int> configured_seeds;
  std::vector<LossPoint> losses;
  std::vector<EvalPoint> evals;
  std::vector<SigmaLayer> sigmas;
  // The resolved config.toml sparser_run wrote beside the summary; null where there is none.
  std::shared_ptr<const toml::table> config;

  bool completed() const { return status == "completed"; }
};

// True when `dir` looks like a run directory (holds summary.json).
bool is_run_dir(const std::filesystem::path& dir);

// Reads summary.json and, when present, metrics.jsonl and config.toml. Throws
// std::runtime_error naming the file on malformed input or an unknown schema version.
RunRecord load_run(const std::filesystem::path& dir);

}  // namespace sparser::analysis

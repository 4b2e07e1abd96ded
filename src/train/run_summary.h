#pragma once
// A run's summary.json: who it is (id, experiment, seed, method, group, the configured
// seeds), how it went (status, error), what it reached (final and best evaluation by
// the first configured metric), what it cost (trainable counts, images/s, wall time)
// and what produced it (provenance). Rank 0 writes it atomically at the end and on a
// stop, the rank that fails on a failure; the analysis tool reads it.
#include <nlohmann/json.hpp>

#include <string>

#include "methods/trainable.h"
#include "train/training_state.h"

namespace sparser::train {

struct RunSpec;

class RunSummary {
 public:
  explicit RunSummary(const RunSpec& spec);
  void set_trainable(const methods::TrainableCount& count);
  // Records an evaluation: it becomes the final one, and the best one if its first
  // metric (`primary_metric`) beats the best so far.
  void note_evaluation(int64_t epoch, const nlohmann::json& metrics);
  // Writes <run_dir>/summary.json with these totals (images/s = trained images per
  // second of training steps; wall time over all sessions).
  void write(const std::string& status, const Position& totals, int64_t world_size,
             const std::string& error = "") const;

 private:
  nlohmann::json identity_;
  std::string run_dir_, primary_metric_;
  int64_t images_per_step_;  // per rank
  nlohmann::json trainable_, final_, best_;
};

}  // namespace sparser::train

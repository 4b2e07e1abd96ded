#pragma once
// The files of a run directory that grow during training: the human log (also on
// stdout) and metrics.jsonl, one JSON object per line. Only rank 0 writes them.
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "util/atomic_file.h"

namespace sparser::train {

class RunLog {
 public:
  // `enabled` = false (ranks other than 0) makes every call a no-op.
  RunLog(const std::string& run_dir, bool enabled);
  // A line for people: stdout and train.log.
  void info(const std::string& line);
  // A record for tools: metrics.jsonl (flushed, so a crash loses nothing written).
  // Both throw naming the file when it cannot be written (a full disk), so that a run
  // never ends as completed with records missing.
  void record(const nlohmann::json& record);
  // On resume from a checkpoint at `global_step`: drops the records written after it
  // (by a run that crashed later), so nothing is counted twice, and returns those kept.
  std::vector<nlohmann::json> rewind(int64_t global_step);
  // On a start without a checkpoint: drops every record (of a session killed before its
  // first checkpoint, whose steps are about to run again).
  void start_over() { rewind(-1); }
  bool enabled() const { return enabled_; }

 private:
  bool enabled_;
  std::string metrics_path_;
  std::optional<util::AppendOnlyFile> log_, metrics_;
};

// Appends a line to <run_dir>/train.log, time-stamped as RunLog::info does: for a rank
// that fails, whichever it is (a RunLog writes only on rank 0).
void append_to_train_log(const std::string& run_dir, const std::string& line);

}  // namespace sparser::train

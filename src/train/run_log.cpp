#include "train/run_log.h"

#include <chrono>
#include <ctime>
#include <fstream>
#include <iostream>

#include "util/atomic_file.h"

namespace sparser::train {

namespace {
std::string stamped(const std::string& line) {
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", std::localtime(&now));
  return stamp + ("  " + line) + "\n";
}
}  // namespace

RunLog::RunLog(const std::string& run_dir, bool enabled) : enabled_(enabled) {
  if (!enabled_) return;
  metrics_path_ = run_dir + "/metrics.jsonl";
  log_.emplace(run_dir + "/train.log");
  metrics_.emplace(metrics_path_);
}

void RunLog::info(const std::string& line) {
  if (!enabled_) return;
  std::cout << line << std::endl;
  log_->append(stamped(line));
}

void RunLog::record(const nlohmann::json& record) {
  if (!enabled_) return;
  metrics_->append(record.dump() + "\n");
}

void append_to_train_log(const std::string& run_dir, const std::string& line) {
  util::AppendOnlyFile(run_dir + "/train.log").append(stamped(line));
}

}  // namespace sparser::train

namespace sparser::train {

std::vector<nlohmann::json> RunLog::rewind(int64_t global_step) {
  std::vector<nlohmann::json> kept;
  if (!enabled_) return kept;
  metrics_.reset();
  std::ifstream in(metrics_path_);
  std::string text;
  for (std::string line; std::getline(in, line);) {
    const auto record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    // A line cut by a crash does not parse; records without a step describe a finished run.
    if (record.is_discarded() || !record.contains("step") || record["step"].get<int64_t>() > global_step) continue;
    text += line + "\n";
    kept.push_back(record);
  }
  in.close();
  util::write_file_atomically(metrics_path_, text);
  metrics_.emplace(metrics_path_);
  return kept;
}

}  // namespace sparser::train

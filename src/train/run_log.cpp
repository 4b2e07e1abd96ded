#include "train/run_log.h"

#include <chrono>
#include <ctime>
#include <iostream>

#include "util/atomic_file.h"

namespace sparser::train {

RunLog::RunLog(const std::string& run_dir, bool enabled) : enabled_(enabled) {
  if (!enabled_) return;
  metrics_path_ = run_dir + "/metrics.jsonl";
  log_.open(run_dir + "/train.log", std::ios::app);
  metrics_.open(metrics_path_, std::ios::app);
  if (!log_ || !metrics_) throw std::runtime_error(run_dir + ": cannot open train.log / metrics.jsonl for writing");
}

void RunLog::info(const std::string& line) {
  if (!enabled_) return;
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", std::localtime(&now));
  std::cout << line << std::endl;
  log_ << stamp << "  " << line << std::endl;
}

void RunLog::record(const nlohmann::json& record) {
  if (!enabled_) return;
  metrics_ << record.dump() << "\n";
  metrics_.flush();
}

}  // namespace sparser::train

namespace sparser::train {

std::vector<nlohmann::json> RunLog::rewind(int64_t global_step) {
  std::vector<nlohmann::json> kept;
  if (!enabled_) return kept;
  metrics_.close();
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
  metrics_.open(metrics_path_, std::ios::app);
  return kept;
}

}  // namespace sparser::train

#include "train/run_log.h"

#include <chrono>
#include <ctime>
#include <iostream>

namespace sparser::train {

RunLog::RunLog(const std::string& run_dir, bool enabled) : enabled_(enabled) {
  if (!enabled_) return;
  log_.open(run_dir + "/train.log", std::ios::app);
  metrics_.open(run_dir + "/metrics.jsonl", std::ios::app);
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

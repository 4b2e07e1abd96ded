#pragma once
// A one-line progress bar on stderr ("[#####     ] 512/1024 files, 85.3/s"), redrawn at
// most every 100 ms; thread-safe.
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace sparser::prep {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total);
  void advance(int64_t by = 1);
  void finish();

 private:
  void draw();

  std::string label_;
  int64_t total_, done_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_;
  std::mutex mutex_;
};

}  // namespace sparser::prep

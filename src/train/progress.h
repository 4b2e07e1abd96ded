#pragma once
// Training progress on rank 0: a bar redrawn in place on a terminal, plain periodic
// lines otherwise (Slurm logs).
#include <chrono>
#include <cstdint>
#include <string>

namespace sparser::train {

class Progress {
 public:
  Progress(int64_t total_steps, int64_t already_done, bool enabled);
  // After each step: updates the bar (or prints a line every `line_every` steps).
  void update(int64_t step, int64_t epoch, double loss, double images_per_second);
  // Ends the bar's line so that other output starts on a fresh one.
  void finish();

 private:
  std::string eta(int64_t step) const;
  int64_t total_, start_step_;
  bool enabled_, terminal_;
  bool bar_open_ = false;
  std::chrono::steady_clock::time_point start_, last_line_;
};

}  // namespace sparser::train

#pragma once
// Training progress on rank 0: a bar redrawn in place on a terminal, plain periodic
// lines otherwise (Slurm logs, files).
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace sparser::train {

// Auto: a bar when stdout is a terminal and the process was not started by an MPI
// launcher (mpirun gives its ranks a pseudo-terminal even when its own output goes to a
// file, so there only the launcher knows; launch/*.sh pass bar or lines).
enum class ProgressStyle { Auto, Bar, Lines };
ProgressStyle parse_progress_style(const std::string& text);  // auto, bar, lines

class Progress {
 public:
  Progress(int64_t total_steps, int64_t already_done, bool enabled, ProgressStyle style);
  // After each step of `epoch` (counted from 1): updates the bar (or prints a line every
  // 30 s and at the end). No loss: the step had no image with instances ("loss -").
  void update(int64_t step, int64_t epoch, std::optional<double> loss, double images_per_second);
  // Ends the bar's line so that other output starts on a fresh one.
  void finish();

 private:
  std::string eta(int64_t step) const;
  int64_t total_, start_step_;
  bool enabled_, bar_;
  bool bar_open_ = false;
  std::chrono::steady_clock::time_point start_, last_line_;
};

}  // namespace sparser::train

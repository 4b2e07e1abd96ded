#include "train/progress.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace sparser::train {

ProgressStyle parse_progress_style(const std::string& text) {
  if (text == "auto") return ProgressStyle::Auto;
  if (text == "bar") return ProgressStyle::Bar;
  if (text == "lines") return ProgressStyle::Lines;
  throw std::invalid_argument("--progress " + text + ": expected auto, bar or lines");
}

namespace {
bool started_by_mpi_launcher() {
  for (const char* variable : {"OMPI_COMM_WORLD_SIZE", "PMI_RANK", "PMIX_RANK"})
    if (std::getenv(variable)) return true;
  return false;
}
}  // namespace

Progress::Progress(int64_t total_steps, int64_t already_done, bool enabled, ProgressStyle style)
    : total_(total_steps),
      start_step_(already_done),
      enabled_(enabled),
      bar_(style == ProgressStyle::Bar ||
           (style == ProgressStyle::Auto && ::isatty(STDOUT_FILENO) != 0 && !started_by_mpi_launcher())),
      start_(std::chrono::steady_clock::now()),
      last_line_(start_) {}

std::string Progress::eta(int64_t step) const {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const auto done = step - start_step_;
  if (done <= 0) return "--:--";
  const auto seconds = static_cast<int64_t>(elapsed / done * (total_ - step));
  char text[32];
  std::snprintf(text, sizeof text, "%ld:%02ld:%02ld", static_cast<long>(seconds / 3600),
                static_cast<long>(seconds / 60 % 60), static_cast<long>(seconds % 60));
  return text;
}

void Progress::update(int64_t step, int64_t epoch, std::optional<double> loss, double images_per_second) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  char loss_text[32] = "-";
  if (loss) std::snprintf(loss_text, sizeof loss_text, "%.4f", *loss);
  if (bar_) {
    const int width = 30;
    const int filled = total_ > 0 ? static_cast<int>(width * step / total_) : width;
    std::printf("\r[%.*s%*s] step %ld/%ld  epoch %ld  loss %s  %.2f img/s  ETA %s ", filled,
                "##############################", width - filled, "", static_cast<long>(step),
                static_cast<long>(total_), static_cast<long>(epoch), loss_text, images_per_second, eta(step).c_str());
    std::fflush(stdout);
    bar_open_ = true;
  } else if (now - last_line_ >= std::chrono::seconds(30) || step == total_) {
    last_line_ = now;
    std::printf("step %ld/%ld  epoch %ld  loss %s  %.2f img/s  ETA %s\n", static_cast<long>(step),
                static_cast<long>(total_), static_cast<long>(epoch), loss_text, images_per_second, eta(step).c_str());
    std::fflush(stdout);
  }
}

void Progress::finish() {
  if (bar_open_) std::printf("\n");
  bar_open_ = false;
}

}  // namespace sparser::train

#include "progress_bar.h"

#include <cstdio>

namespace sparser::prep {

ProgressBar::ProgressBar(std::string label, int64_t total)
    : label_(std::move(label)), total_(total), start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

void ProgressBar::advance(int64_t by) {
  std::lock_guard<std::mutex> lock(mutex_);
  done_ += by;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  draw();
}

void ProgressBar::finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  draw();
  std::fputc('\n', stderr);
}

void ProgressBar::draw() {
  constexpr int kWidth = 30;
  const int filled = total_ > 0 ? static_cast<int>(kWidth * done_ / total_) : kWidth;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::fprintf(stderr, "\r%s [%s%s] %lld/%lld files, %.1f/s", label_.c_str(), std::string(filled, '#').c_str(),
               std::string(kWidth - filled, ' ').c_str(), static_cast<long long>(done_),
               static_cast<long long>(total_), seconds > 0 ? done_ / seconds : 0.0);
  std::fflush(stderr);
}

}  // namespace sparser::prep

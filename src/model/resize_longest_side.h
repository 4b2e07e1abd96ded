#pragma once
// The official ResizeLongestSide transform: images are resized so their longest side
// is the model's image_size; boxes and points follow with the same scale factors.
// Torch-free, so the data pipeline can use it in its loader threads.
#include <opencv2/core.hpp>

#include <array>
#include <cstdint>
#include <utility>

namespace sparser::model {

class ResizeLongestSide {
 public:
  explicit ResizeLongestSide(int64_t target_length) : target_length_(target_length) {}

  // (height, width) after resizing an old_h × old_w image (rounded half up, as official).
  std::pair<int64_t, int64_t> output_size(int64_t old_h, int64_t old_w) const;
  // An 8-bit image (any channel count) resized as the official code does it, with PIL's
  // bilinear resampling (antialiased when shrinking), reproduced to the last bit.
  cv::Mat apply_image(const cv::Mat& image) const;
  // Maps an (x, y) point of an original_h × original_w image into the resized frame.
  std::array<float, 2> apply_coords(std::array<float, 2> xy, int64_t original_h, int64_t original_w) const;
  // Maps an (x0, y0, x1, y1) box likewise.
  std::array<float, 4> apply_box(std::array<float, 4> box, int64_t original_h, int64_t original_w) const;
  int64_t target_length() const { return target_length_; }

 private:
  int64_t target_length_;
};

}  // namespace sparser::model

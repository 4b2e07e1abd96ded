#include "model/resize_longest_side.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace sparser::model {

std::pair<int64_t, int64_t> ResizeLongestSide::output_size(int64_t old_h, int64_t old_w) const {
  if (old_h <= 0 || old_w <= 0)
    throw std::invalid_argument("ResizeLongestSide: empty image (" + std::to_string(old_h) + "x" +
                                std::to_string(old_w) + ")");
  const double scale = static_cast<double>(target_length_) / static_cast<double>(std::max(old_h, old_w));
  return {static_cast<int64_t>(old_h * scale + 0.5), static_cast<int64_t>(old_w * scale + 0.5)};
}

cv::Mat ResizeLongestSide::apply_image(const cv::Mat& image) const {
  const auto [h, w] = output_size(image.rows, image.cols);
  if (h == image.rows && w == image.cols) return image.clone();
  const bool shrinking = h < image.rows;
  cv::Mat out;
  cv::resize(image, out, cv::Size(static_cast<int>(w), static_cast<int>(h)), 0, 0,
             shrinking ? cv::INTER_AREA : cv::INTER_LINEAR);
  return out;
}

std::array<float, 2> ResizeLongestSide::apply_coords(std::array<float, 2> xy, int64_t original_h,
                                                     int64_t original_w) const {
  const auto [h, w] = output_size(original_h, original_w);
  return {static_cast<float>(xy[0] * (static_cast<double>(w) / original_w)),
          static_cast<float>(xy[1] * (static_cast<double>(h) / original_h))};
}

std::array<float, 4> ResizeLongestSide::apply_box(std::array<float, 4> box, int64_t original_h,
                                                  int64_t original_w) const {
  const auto a = apply_coords({box[0], box[1]}, original_h, original_w);
  const auto b = apply_coords({box[2], box[3]}, original_h, original_w);
  return {a[0], a[1], b[0], b[1]};
}

}  // namespace sparser::model

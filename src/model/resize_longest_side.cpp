#include "model/resize_longest_side.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>
#include <stdexcept>
#include <string>

namespace sparser::model {

std::pair<int64_t, int64_t> ResizeLongestSide::output_size(int64_t old_h, int64_t old_w) const {
  if (old_h <= 0 || old_w <= 0)
    throw std::invalid_argument("ResizeLongestSide: empty image (" + std::to_string(old_h) + "x" +
                                std::to_string(old_w) + ")");
  const double scale = static_cast<double>(target_length_) / static_cast<double>(std::max(old_h, old_w));
  const int64_t h = static_cast<int64_t>(old_h * scale + 0.5), w = static_cast<int64_t>(old_w * scale + 0.5);
  if (h == 0 || w == 0)
    throw std::invalid_argument("a " + std::to_string(old_h) + "x" + std::to_string(old_w) +
                                " image (height x width) has no rows or columns left at a longest side of " +
                                std::to_string(target_length_) + " pixels; crop it to a side ratio below " +
                                std::to_string(2 * target_length_) + ":1");
  return {h, w};
}

namespace {

// PIL's 8-bit resampling arithmetic (Resample.c): weights in fixed point with 22
// fractional bits, sums started at one half, results floored and clipped to 0..255.
constexpr int kPrecisionBits = 32 - 8 - 2;

// For each output position along one axis: the first input index, how many inputs it
// averages and their fixed-point weights (the triangle filter widened by the scale
// when shrinking, i.e. antialiased; centres at (i + 0.5)·scale).
struct AxisWeights {
  int taps = 0;  // weights per output position (some trailing ones may be zero)
  std::vector<int> first, count;
  std::vector<int32_t> weights;  // [out][taps]
};

AxisWeights bilinear_weights(int in_size, int out_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filter_scale = std::max(scale, 1.0);
  const double support = 1.0 * filter_scale;  // the triangle's half-width
  AxisWeights a;
  a.taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  a.first.resize(out_size);
  a.count.resize(out_size);
  a.weights.assign(static_cast<size_t>(out_size) * a.taps, 0);
  std::vector<double> w(a.taps);
  for (int o = 0; o < out_size; ++o) {
    const double centre = (o + 0.5) * scale;
    const int first = std::max(0, static_cast<int>(centre - support + 0.5));
    const int count = std::min(in_size, static_cast<int>(centre + support + 0.5)) - first;
    double total = 0;
    for (int k = 0; k < count; ++k) {
      const double x = std::abs((k + first - centre + 0.5) / filter_scale);
      w[k] = x < 1.0 ? 1.0 - x : 0.0;
      total += w[k];
    }
    for (int k = 0; k < count; ++k) {
      const double normalised = total != 0.0 ? w[k] / total : w[k];
      a.weights[static_cast<size_t>(o) * a.taps + k] =
          static_cast<int32_t>(normalised < 0 ? -0.5 + normalised * (1 << kPrecisionBits)
                                              : 0.5 + normalised * (1 << kPrecisionBits));
    }
    a.first[o] = first;
    a.count[o] = count;
  }
  return a;
}

uint8_t clip8(int32_t sum) { return static_cast<uint8_t>(std::clamp(sum >> kPrecisionBits, 0, 255)); }

// One pass along rows (horizontal) or columns (vertical) of an 8-bit image.
cv::Mat resample(const cv::Mat& in, int out_size, bool horizontal) {
  const int channels = in.channels();
  const auto a = bilinear_weights(horizontal ? in.cols : in.rows, out_size);
  cv::Mat out(horizontal ? in.rows : out_size, horizontal ? out_size : in.cols, in.type());
  for (int y = 0; y < out.rows; ++y) {
    auto* dst = out.ptr<uint8_t>(y);
    for (int x = 0; x < out.cols; ++x) {
      const int o = horizontal ? x : y;
      const int32_t* w = &a.weights[static_cast<size_t>(o) * a.taps];
      for (int c = 0; c < channels; ++c) {
        int32_t sum = 1 << (kPrecisionBits - 1);
        for (int k = 0; k < a.count[o]; ++k) {
          const int i = a.first[o] + k;
          const uint8_t v = horizontal ? in.ptr<uint8_t>(y)[i * channels + c] : in.ptr<uint8_t>(i)[x * channels + c];
          sum += v * w[k];
        }
        dst[x * channels + c] = clip8(sum);
      }
    }
  }
  return out;
}

}  // namespace

cv::Mat ResizeLongestSide::apply_image(const cv::Mat& image) const {
  if (image.depth() != CV_8U)
    throw std::invalid_argument("ResizeLongestSide: expected an 8-bit image (got OpenCV depth " +
                                std::to_string(image.depth()) + ")");
  const auto [h, w] = output_size(image.rows, image.cols);
  // As PIL's Image.resize(BILINEAR), which the official code calls: a horizontal pass,
  // then a vertical one, each only where the size changes.
  cv::Mat out = image;
  if (w != image.cols) out = resample(out, static_cast<int>(w), /*horizontal=*/true);
  if (h != image.rows) out = resample(out, static_cast<int>(h), /*horizontal=*/false);
  return out.data == image.data ? image.clone() : out;
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

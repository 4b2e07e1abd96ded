#include "data/eight_bit_image.h"

#include <algorithm>
#include <vector>

namespace sparser::data {

cv::Mat to_eight_bit(const cv::Mat& image) {
  if (image.depth() == CV_8U) return image;
  cv::Mat values;
  image.convertTo(values, CV_64F);  // a new, continuous matrix
  const cv::Mat all = values.reshape(1, 1);
  std::vector<double> sorted(all.begin<double>(), all.end<double>());
  const auto at_quantile = [&](double q) {
    auto nth = sorted.begin() + static_cast<std::ptrdiff_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
    std::nth_element(sorted.begin(), nth, sorted.end());
    return *nth;
  };
  const double low = at_quantile(0.005), high = at_quantile(0.995);
  if (high <= low) return cv::Mat::zeros(image.size(), CV_8UC(image.channels()));
  cv::Mat out;
  // convertTo rounds and saturates: values outside [low, high] clip to 0 and 255.
  values.convertTo(out, CV_8U, 255.0 / (high - low), -low * 255.0 / (high - low));
  return out;
}

}  // namespace sparser::data

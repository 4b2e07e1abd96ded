#pragma once
// Images of more than 8 bits (16-bit PNG/TIFF, float TIFF: microscopy, X-ray, MR slices)
// as SAM takes them: 8 bits per channel. Read as 8-bit, OpenCV keeps a 16-bit image's high
// byte, so 12-bit data (0..4095) became 16 grey levels; instead, MedSAM's rule for non-CT
// images: intensities clipped to the image's 0.5th and 99.5th percentiles, scaled to 0..255.
// (CT volumes have their own window: data_prep/convert_abdomenct.cpp.)
#include <opencv2/core.hpp>

namespace sparser::data {

// `image` with OpenCV depth CV_8U as it is (not copied); any other depth rescaled as above,
// all channels together. A constant image becomes 0.
cv::Mat to_eight_bit(const cv::Mat& image);

}  // namespace sparser::data

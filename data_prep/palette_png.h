#pragma once
// Reads the palette indices of an 8-bit indexed PNG (colour type 3), as PASCAL VOC's
// SegmentationClass / SegmentationObject files are; OpenCV would expand them to colours.
// Greyscale 8-bit PNGs are accepted too (their values are the indices).
#include <opencv2/core.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace sparser::prep {

// CV_8U indices; throws SourceError naming `path` for anything else (interlaced,
// other bit depths, damaged data).
cv::Mat read_png_indices(const std::string& path, const std::vector<uint8_t>& bytes);

}  // namespace sparser::prep

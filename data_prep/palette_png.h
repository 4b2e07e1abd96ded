#pragma once
// Reads the stored values of indexed PNGs: the palette indices of a colour-type-3 PNG (as
// PASCAL VOC's SegmentationClass / SegmentationObject files are, and many label tools
// write), which OpenCV would expand to colours, and the raw values of greyscale PNGs of
// 1, 2, 4 or 8 bits, which OpenCV would rescale to 0..255.
#include <opencv2/core.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace sparser::prep {

// True if `bytes` is a PNG that read_png_indices reads: palette, or greyscale of at most
// 8 bits (interlaced or not; read_png_indices refuses interlaced ones by name).
bool has_png_indices(const std::vector<uint8_t>& bytes);

// CV_8U indices; throws SourceError naming `path` for anything else (interlaced, colour,
// 16-bit, damaged data).
cv::Mat read_png_indices(const std::string& path, const std::vector<uint8_t>& bytes);

}  // namespace sparser::prep

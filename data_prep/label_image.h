#pragma once
// Label images (masks whose pixel values are class or instance ids), read so that every
// stored value survives: palette PNGs by palette index and greyscale PNGs of 1-4 bits by
// raw value (palette_png.h; OpenCV would turn them into colours or rescale them), other
// files with OpenCV unchanged (8- or 16-bit greyscale PNG, TIFF, BMP). Colour masks are
// refused: their values are colours, not ids, and converting them to grey merges ids.
#include <opencv2/core.hpp>

#include <string>

namespace sparser::prep {

// CV_8U or CV_16U, one channel. Throws SourceError naming `path` if it is missing,
// undecodable, has several channels, or another pixel type.
cv::Mat read_label_image(const std::string& path);

}  // namespace sparser::prep

#include "label_image.h"

#include <opencv2/imgcodecs.hpp>

#include "conversion.h"
#include "palette_png.h"

namespace sparser::prep {

cv::Mat read_label_image(const std::string& path) {
  const auto bytes = read_file_bytes(path);
  if (has_png_indices(bytes)) return read_png_indices(path, bytes);
  const cv::Mat label = decode_image_file(path, bytes, cv::IMREAD_UNCHANGED);
  if (label.channels() != 1)
    throw SourceError(path + ": a " + std::to_string(label.channels()) +
                      "-channel (colour) mask; masks must hold label values: single-channel 8/16-bit or palette PNG");
  if (label.depth() != CV_8U && label.depth() != CV_16U)
    throw SourceError(path + ": mask pixels must be 8- or 16-bit unsigned integers (OpenCV depth " +
                      std::to_string(label.depth()) + ")");
  return label;
}

}  // namespace sparser::prep

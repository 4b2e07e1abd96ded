#pragma once
// A sample as stored (encoded) and as the training loop sees it (decoded).
#include <opencv2/core.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace sparser::data {

// Box (x0, y0, x1, y1); x1/y1 exclusive, so a one-pixel mask at (x, y) has box (x, y, x+1, y+1).
using Box = std::array<float, 4>;

struct EncodedInstance {
  std::vector<uint8_t> mask_png;  // 0/1 uint8 mask at the original image size
  Box box{};
  int32_t class_id = 0;
  int64_t area = 0;
};

// One image with its instances, exactly as stored in a shard.
struct EncodedSample {
  std::vector<uint8_t> image;  // PNG or JPEG bytes
  int32_t height = 0;
  int32_t width = 0;
  std::string file_name;
  int64_t source_id = -1;
  std::string meta_json = "{}";
  std::vector<EncodedInstance> instances;
};

struct Instance {
  cv::Mat mask;  // CV_8U, values 0/1, same size as the sample's image
  Box box{};
  int32_t class_id = 0;
};

struct Sample {
  int64_t index = -1;  // global index in the split
  cv::Mat image;       // CV_8UC3, RGB
  std::string file_name;
  std::vector<Instance> instances;
};

// "sample 12 (train/0012.png)", for error messages.
inline std::string describe(const Sample& sample) {
  return "sample " + std::to_string(sample.index) + " (" + sample.file_name + ")";
}

}  // namespace sparser::data

#pragma once
// COCO run-length encoded masks (pycocotools' maskApi): runs over the mask in column-major
// order, starting with a run of zeros. "Uncompressed" RLE is the list of run lengths;
// "compressed" RLE is the string form, where each count (after the first two, as a delta
// to the count two before it) is written in 5-bit groups, least significant first, each
// as the character 48 + group, with bit 0x20 marking "more groups follow" and bit 0x10 of
// the last group the sign.
#include <opencv2/core.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace sparser::data {

struct CocoRle {
  int height = 0;
  int width = 0;
  std::vector<uint32_t> counts;
};

std::string rle_counts_to_string(const std::vector<uint32_t>& counts);
// Throws DataError on a string that is not a valid compressed RLE.
std::vector<uint32_t> rle_counts_from_string(const std::string& text);

// CV_8U 0/1 mask; throws DataError if the counts do not cover height × width exactly.
cv::Mat rle_decode(const CocoRle& rle);
CocoRle rle_encode(const cv::Mat& mask);

}  // namespace sparser::data

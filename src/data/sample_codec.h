#pragma once
// Encoding masks for shards and decoding stored samples back to pixels.
#include <string>

#include "data/sample.h"

namespace sparser::data {

// Builds a stored instance from a 0/1 (or 0/non-zero) CV_8U mask: PNG bytes, the tight
// box (x1/y1 exclusive) and the pixel area. An empty mask gives area 0 and a zero box.
EncodedInstance encode_instance(const cv::Mat& mask, int32_t class_id);

// Decodes the image (to RGB) and the masks; `where` names the sample in errors
// (e.g. "train-00003.h5: sample 17"). Throws DataError on undecodable bytes or a
// size that disagrees with the stored height/width.
Sample decode_sample(const EncodedSample& encoded, const std::string& where);

}  // namespace sparser::data

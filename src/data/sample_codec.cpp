#include "data/sample_codec.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "data/eight_bit_image.h"
#include "data/shard_format.h"

namespace sparser::data {

EncodedInstance encode_instance(const cv::Mat& mask, int32_t class_id) {
  CV_Assert(mask.type() == CV_8UC1);
  EncodedInstance instance;
  instance.class_id = class_id;
  cv::Mat binary = mask != 0;  // 0/255
  instance.area = cv::countNonZero(binary);
  if (instance.area > 0) {
    const cv::Rect r = cv::boundingRect(binary);
    instance.box = {static_cast<float>(r.x), static_cast<float>(r.y), static_cast<float>(r.x + r.width),
                    static_cast<float>(r.y + r.height)};
  }
  binary /= 255;
  // Fastest zlib level: masks are mostly runs and compress well even so.
  cv::imencode(".png", binary, instance.mask_png, {cv::IMWRITE_PNG_COMPRESSION, 1});
  return instance;
}

Sample decode_sample(const EncodedSample& encoded, const std::string& where) {
  Sample sample;
  sample.file_name = encoded.file_name;
  // The masks were drawn on the stored pixel array: an EXIF orientation tag must not rotate it.
  // sparser_prep stores 8 bits; a hand-made shard's deeper image is brought down as
  // sparser_prep and sparser_predict do (read as 8-bit, only its high byte would remain).
  const cv::Mat bgr = to_eight_bit(
      cv::imdecode(encoded.image, cv::IMREAD_COLOR | cv::IMREAD_ANYDEPTH | cv::IMREAD_IGNORE_ORIENTATION));
  if (bgr.empty()) throw DataError(where + " (" + encoded.file_name + "): image bytes do not decode");
  if (bgr.rows != encoded.height || bgr.cols != encoded.width)
    throw DataError(where + " (" + encoded.file_name + "): image is " + std::to_string(bgr.cols) + "x" +
                    std::to_string(bgr.rows) + ", stored size says " + std::to_string(encoded.width) + "x" +
                    std::to_string(encoded.height));
  cv::cvtColor(bgr, sample.image, cv::COLOR_BGR2RGB);
  for (size_t k = 0; k < encoded.instances.size(); ++k) {
    const auto& e = encoded.instances[k];
    Instance instance;
    // Any non-zero value is the mask, at any bit depth: a 16-bit 0/1 mask read as 8 bits would be empty.
    const cv::Mat stored = cv::imdecode(e.mask_png, cv::IMREAD_GRAYSCALE | cv::IMREAD_ANYDEPTH);
    if (stored.empty() || stored.size() != bgr.size())
      throw DataError(where + " (" + encoded.file_name + "): mask of instance " + std::to_string(k) +
                      " does not decode to the image size");
    cv::min(stored, 1, instance.mask);  // one pass; sparser_prep's 0/1 masks stay as they are
    if (instance.mask.depth() != CV_8U) instance.mask.convertTo(instance.mask, CV_8U);
    instance.box = e.box;
    instance.class_id = e.class_id;
    sample.instances.push_back(std::move(instance));
  }
  return sample;
}

}  // namespace sparser::data

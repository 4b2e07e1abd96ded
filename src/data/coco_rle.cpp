#include "data/coco_rle.h"

#include "data/shard_format.h"

namespace sparser::data {

std::string rle_counts_to_string(const std::vector<uint32_t>& counts) {
  std::string text;
  for (size_t i = 0; i < counts.size(); ++i) {
    int64_t x = counts[i];
    if (i > 2) x -= static_cast<int64_t>(counts[i - 2]);
    for (bool more = true; more;) {
      int64_t c = x & 0x1f;
      x >>= 5;  // arithmetic shift: negative deltas end at -1
      more = (c & 0x10) ? x != -1 : x != 0;
      if (more) c |= 0x20;
      text.push_back(static_cast<char>(c + 48));
    }
  }
  return text;
}

std::vector<uint32_t> rle_counts_from_string(const std::string& text) {
  std::vector<uint32_t> counts;
  size_t p = 0;
  while (p < text.size()) {
    int64_t x = 0;
    int k = 0;
    for (bool more = true; more; ++k, ++p) {
      if (p >= text.size() || k > 12) throw DataError("compressed RLE: truncated or overlong count");
      const int64_t c = static_cast<int64_t>(text[p]) - 48;
      if (c < 0 || c > 63) throw DataError("compressed RLE: invalid character '" + std::string(1, text[p]) + "'");
      x |= (c & 0x1f) << (5 * k);
      more = (c & 0x20) != 0;
      if (!more && (c & 0x10)) x |= static_cast<int64_t>(~uint64_t{0} << (5 * (k + 1)));
    }
    if (counts.size() > 2) x += counts[counts.size() - 2];
    if (x < 0) throw DataError("compressed RLE: negative run length");
    counts.push_back(static_cast<uint32_t>(x));
  }
  return counts;
}

cv::Mat rle_decode(const CocoRle& rle) {
  const int64_t total = static_cast<int64_t>(rle.height) * rle.width;
  // Filled column by column: decode into the transpose, then transpose back.
  cv::Mat transposed(rle.width, rle.height, CV_8U, cv::Scalar(0));
  uint8_t* data = transposed.ptr<uint8_t>();
  int64_t position = 0;
  uint8_t value = 0;
  for (uint32_t count : rle.counts) {
    if (position + count > total)
      throw DataError("RLE: run lengths exceed the " + std::to_string(rle.height) + "x" + std::to_string(rle.width) +
                      " mask");
    if (value) std::fill(data + position, data + position + count, uint8_t{1});
    position += count;
    value ^= 1;
  }
  if (position != total)
    throw DataError("RLE: run lengths cover " + std::to_string(position) + " of " + std::to_string(total) + " pixels");
  return transposed.t();
}

CocoRle rle_encode(const cv::Mat& mask) {
  CV_Assert(mask.type() == CV_8UC1);
  CocoRle rle{mask.rows, mask.cols, {}};
  const cv::Mat transposed = mask.t();
  const uint8_t* data = transposed.ptr<uint8_t>();
  const size_t total = transposed.total();
  uint8_t value = 0;
  uint32_t run = 0;
  for (size_t i = 0; i < total; ++i) {
    const uint8_t v = data[i] != 0;
    if (v != value) {
      rle.counts.push_back(run);
      run = 0;
      value = v;
    }
    ++run;
  }
  rle.counts.push_back(run);
  return rle;
}

}  // namespace sparser::data

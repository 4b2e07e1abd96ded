#include "palette_png.h"

#include <zlib.h>

#include <cstdlib>
#include <cstring>

#include "conversion.h"

namespace sparser::prep {

namespace {

uint32_t big_endian(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

constexpr uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
constexpr uint8_t kGreyscale = 0, kPalette = 3;

// PNG filter types 0-4 on a row of `size` bytes, for pixels of at most one byte (the
// filters then work byte by byte, whatever the bit depth).
void unfilter(uint8_t type, uint8_t* row, const uint8_t* previous, size_t size) {
  for (size_t x = 0; x < size; ++x) {
    const int a = x > 0 ? row[x - 1] : 0, b = previous ? previous[x] : 0, c = (x > 0 && previous) ? previous[x - 1] : 0;
    int predictor = 0;
    switch (type) {
      case 0: predictor = 0; break;
      case 1: predictor = a; break;
      case 2: predictor = b; break;
      case 3: predictor = (a + b) / 2; break;
      case 4: {
        const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
        predictor = (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c);
        break;
      }
    }
    row[x] = static_cast<uint8_t>(row[x] + predictor);
  }
}

}  // namespace

bool has_png_indices(const std::vector<uint8_t>& bytes) {
  // The IHDR chunk comes first: bit depth at byte 24, colour type at byte 25.
  if (bytes.size() < 33 || std::memcmp(bytes.data(), kSignature, 8) != 0) return false;
  return bytes[25] == kPalette || (bytes[25] == kGreyscale && bytes[24] <= 8);
}

cv::Mat read_png_indices(const std::string& path, const std::vector<uint8_t>& bytes) {
  if (bytes.size() < 33 || std::memcmp(bytes.data(), kSignature, 8) != 0) throw SourceError(path + ": not a PNG");
  uint32_t width = 0, height = 0;
  uint8_t depth = 0;
  std::vector<uint8_t> compressed;
  for (size_t p = 8; p + 12 <= bytes.size();) {
    const uint32_t length = big_endian(&bytes[p]);
    if (p + 12 + length > bytes.size()) throw SourceError(path + ": truncated PNG chunk");
    const std::string type(reinterpret_cast<const char*>(&bytes[p + 4]), 4);
    const uint8_t* data = &bytes[p + 8];
    if (type == "IHDR") {
      width = big_endian(data);
      height = big_endian(data + 4);
      depth = data[8];
      const uint8_t colour = data[9], interlace = data[12];
      const bool supported_depth = depth == 1 || depth == 2 || depth == 4 || depth == 8;
      if (!supported_depth || (colour != kPalette && colour != kGreyscale) || interlace != 0)
        throw SourceError(path + ": expected an indexed or greyscale PNG of 1-8 bits, not interlaced (depth " +
                          std::to_string(depth) + ", colour type " + std::to_string(colour) + ", interlace " +
                          std::to_string(interlace) + ")");
    } else if (type == "IDAT") {
      compressed.insert(compressed.end(), data, data + length);
    } else if (type == "IEND") {
      break;
    }
    p += 12 + length;
  }
  if (width == 0 || height == 0) throw SourceError(path + ": PNG without IHDR");
  // Each row: a filter-type byte, then the pixels packed most significant bits first.
  const size_t row_bytes = (static_cast<size_t>(width) * depth + 7) / 8;
  std::vector<uint8_t> raw(static_cast<size_t>(height) * (row_bytes + 1));
  uLongf raw_size = raw.size();
  if (uncompress(raw.data(), &raw_size, compressed.data(), compressed.size()) != Z_OK || raw_size != raw.size())
    throw SourceError(path + ": damaged PNG image data");
  cv::Mat indices(static_cast<int>(height), static_cast<int>(width), CV_8U);
  const int per_byte = 8 / depth;
  const uint8_t value_mask = static_cast<uint8_t>((1u << depth) - 1);
  for (uint32_t y = 0; y < height; ++y) {
    uint8_t* row = &raw[y * (row_bytes + 1)];
    if (row[0] > 4) throw SourceError(path + ": bad PNG filter type in row " + std::to_string(y));
    unfilter(row[0], row + 1, y > 0 ? &raw[(y - 1) * (row_bytes + 1)] + 1 : nullptr, row_bytes);
    uint8_t* out = indices.ptr<uint8_t>(static_cast<int>(y));
    for (uint32_t x = 0; x < width; ++x) {
      const int shift = 8 - depth * (1 + static_cast<int>(x % per_byte));
      out[x] = static_cast<uint8_t>((row[1 + x / per_byte] >> shift) & value_mask);
    }
  }
  return indices;
}

}  // namespace sparser::prep

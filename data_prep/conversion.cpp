#include "conversion.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "data/eight_bit_image.h"
#include "util/seeded_rng.h"

namespace sparser::prep {

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw SourceError(path + ": missing or unreadable");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw SourceError(path + ": read error");
  return bytes;
}

cv::Mat decode_image_file(const std::string& path, const std::vector<uint8_t>& bytes, int flags) {
  // Annotations refer to the stored pixel array (as pycocotools and PIL read it), so an
  // EXIF orientation tag must not rotate the image away from its masks.
  if (flags != cv::IMREAD_UNCHANGED) flags |= cv::IMREAD_IGNORE_ORIENTATION;
  cv::Mat image = bytes.empty() ? cv::Mat() : cv::imdecode(bytes, flags);
  if (image.empty()) throw SourceError(path + ": not a decodable image (corrupt or unsupported format)");
  return image;
}

SourceImage read_source_image(const std::string& path, const std::string& file_name) {
  SourceImage image;
  auto bytes = read_file_bytes(path);
  const cv::Mat as_stored = decode_image_file(path, bytes, cv::IMREAD_COLOR | cv::IMREAD_ANYDEPTH);  // 3 channels
  const cv::Mat decoded = data::to_eight_bit(as_stored);
  // 8-bit PNG/JPEG bytes are stored as they are (a shard is then about the size of the
  // source; the reader decodes them the same way, EXIF orientation ignored); other formats
  // and depths are re-encoded as 8-bit PNG.
  const bool png = bytes.size() >= 8 && bytes[0] == 0x89 && bytes[1] == 'P' && bytes[2] == 'N' && bytes[3] == 'G';
  const bool jpeg = bytes.size() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF;
  if ((png || jpeg) && as_stored.depth() == CV_8U)
    image.encoded = std::move(bytes);
  else if (!cv::imencode(".png", decoded, image.encoded))
    throw SourceError(path + ": cannot re-encode as PNG");
  image.height = decoded.rows;
  image.width = decoded.cols;
  image.file_name = file_name;
  return image;
}

std::vector<SourceMask> connected_component_masks(const cv::Mat& label, int32_t class_id) {
  cv::Mat components;
  const int n = cv::connectedComponents(label != 0, components, 8, CV_32S);
  std::vector<SourceMask> masks;
  for (int c = 1; c < n; ++c) masks.push_back({components == c, class_id});
  return masks;
}

std::vector<std::string> list_files(const std::string& directory, const std::vector<std::string>& extensions) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(directory)) throw SourceError(directory + ": missing directory");
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(directory)) {
    if (!entry.is_regular_file()) continue;
    std::string extension = entry.path().extension().string();
    std::transform(extension.begin(), extension.end(), extension.begin(), [](unsigned char c) { return std::tolower(c); });
    if (std::find(extensions.begin(), extensions.end(), extension) != extensions.end())
      files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<bool> seeded_split(size_t count, double first_fraction, uint64_t seed, const std::string& option) {
  if (!(first_fraction >= 0 && first_fraction <= 1))
    throw SourceError(option + " must be between 0 and 1, not " + std::to_string(first_fraction));
  std::vector<size_t> order(count);
  std::iota(order.begin(), order.end(), size_t{0});
  util::SeededRng(seed).shuffle(order);
  const auto first = static_cast<size_t>(std::llround(first_fraction * static_cast<double>(count)));
  std::vector<bool> in_first(count, false);
  for (size_t i = 0; i < first; ++i) in_first[order[i]] = true;
  return in_first;
}

}  // namespace sparser::prep

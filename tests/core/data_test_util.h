#pragma once
// Helpers for the data tests: scratch directories, running sparser_prep, reading its
// output back, and writers for source formats (COCO JSON; palette PNG and NIfTI, which
// OpenCV cannot produce).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <vector>

#include "data/shard_dataset.h"

namespace sparser::test {

namespace fs = std::filesystem;

// A fresh directory under the system temp dir, removed at the end of the test.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& name)
      : path_(fs::temp_directory_path() / ("sparser_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~ScratchDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  std::string operator/(const std::string& child) const { return (path_ / child).string(); }

 private:
  fs::path path_;
};

// Runs sparser_prep with `arguments`; returns its exit status, output in *output.
inline int run_prep(const std::string& arguments, std::string* output = nullptr) {
  const std::string log = (fs::temp_directory_path() / ("sparser_prep_log_" + std::to_string(::getpid()))).string();
  const std::string command = std::string(SPARSER_BIN_DIR) + "/sparser_prep " + arguments + " > " + log + " 2>&1";
  const int status = std::system(command.c_str());
  std::ifstream in(log);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (output) *output = text;
  fs::remove(log);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A 0/1 mask of size h x w with `r` set.
inline cv::Mat rect_mask(int h, int w, cv::Rect r) {
  cv::Mat m(h, w, CV_8U, cv::Scalar(0));
  m(r) = 1;
  return m;
}

inline bool same_mask(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && cv::countNonZero(a != b) == 0;
}

// Every sample of a split, checksums verified first.
inline std::vector<data::Sample> read_all(const std::string& manifest) {
  data::ShardDataset dataset(manifest, data::ChecksumCheck::OnOpen);
  std::vector<data::Sample> out;
  for (int64_t i = 0; i < dataset.size(); ++i) out.push_back(dataset.get(i));
  return out;
}

// A COCO-format annotation file under construction.
struct CocoJson {
  nlohmann::json json = {{"images", nlohmann::json::array()},
                         {"annotations", nlohmann::json::array()},
                         {"categories", {{{"id", 1}, {"name", "cat"}}, {{"id", 5}, {"name", "dog"}}}}};
  int next_annotation_id = 0;

  void add_image(int64_t id, const std::string& file_name, int height, int width) {
    json["images"].push_back({{"id", id}, {"file_name", file_name}, {"height", height}, {"width", width}});
  }
  void add_annotation(int64_t image_id, int category, const nlohmann::json& segmentation, int crowd = 0) {
    json["annotations"].push_back({{"id", next_annotation_id++}, {"image_id", image_id}, {"category_id", category},
                                   {"iscrowd", crowd}, {"segmentation", segmentation}});
  }
  void write(const std::string& path) const {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path) << json.dump();
  }
};

// cv::imwrite, creating the parent directories first.
inline void write_image(const std::string& path, const cv::Mat& image) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  ASSERT_TRUE(cv::imwrite(path, image)) << path;
}

// A COCO train split of one grey 16 × 16 image with one square, for tests about the
// val split (a split without source files is an error).
inline void write_minimal_coco_train(const std::string& root) {
  write_image(root + "/train2017/plain.png", cv::Mat(16, 16, CV_8UC3, cv::Scalar(50, 50, 50)));
  CocoJson train;
  train.add_image(1, "plain.png", 16, 16);
  train.add_annotation(1, 1, {{2, 2, 10, 2, 10, 10, 2, 10}});
  train.write(root + "/annotations/instances_train2017.json");
}

// `jpeg` with an EXIF block (APP1 right after the start marker) holding only the
// Orientation tag (1-8; 6: rotate 90° clockwise to display).
inline std::vector<uint8_t> with_exif_orientation(const std::vector<uint8_t>& jpeg, uint8_t orientation) {
  const std::vector<uint8_t> exif = {'E', 'x', 'i', 'f', 0, 0,
                                     'I', 'I', 42, 0, 8, 0, 0, 0,                 // little-endian TIFF, IFD at 8
                                     1, 0,                                        // one entry:
                                     0x12, 0x01, 3, 0, 1, 0, 0, 0, orientation, 0, 0, 0,  // 0x0112, SHORT, 1 value
                                     0, 0, 0, 0};                                 // no next IFD
  const size_t length = exif.size() + 2;
  std::vector<uint8_t> out(jpeg.begin(), jpeg.begin() + 2);  // SOI
  out.insert(out.end(), {0xFF, 0xE1, static_cast<uint8_t>(length >> 8), static_cast<uint8_t>(length & 0xFF)});
  out.insert(out.end(), exif.begin(), exif.end());
  out.insert(out.end(), jpeg.begin() + 2, jpeg.end());
  return out;
}

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// A palette PNG (colour type 3) of `bit_depth` 1, 2, 4 or 8 holding `indices`, with PNG
// filter `filter` (0-4) on every row.
inline void write_palette_png(const std::string& path, const cv::Mat& indices, int bit_depth = 8, int filter = 0) {
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  const auto chunk = [&](const char* type, const std::vector<uint8_t>& data) {
    const uint32_t n = static_cast<uint32_t>(data.size());
    for (int s = 24; s >= 0; s -= 8) png.push_back(static_cast<uint8_t>(n >> s));
    std::vector<uint8_t> body(type, type + 4);
    body.insert(body.end(), data.begin(), data.end());
    png.insert(png.end(), body.begin(), body.end());
    const uint32_t crc = static_cast<uint32_t>(crc32(0, body.data(), static_cast<uInt>(body.size())));
    for (int s = 24; s >= 0; s -= 8) png.push_back(static_cast<uint8_t>(crc >> s));
  };
  const uint32_t w = static_cast<uint32_t>(indices.cols), h = static_cast<uint32_t>(indices.rows);
  chunk("IHDR", {uint8_t(w >> 24), uint8_t(w >> 16), uint8_t(w >> 8), uint8_t(w), uint8_t(h >> 24), uint8_t(h >> 16),
                 uint8_t(h >> 8), uint8_t(h), uint8_t(bit_depth), 3, 0, 0, 0});
  std::vector<uint8_t> palette;
  for (int i = 0; i < (1 << bit_depth); ++i)
    palette.insert(palette.end(), {uint8_t(i * 37), uint8_t(i * 91), uint8_t(i * 13)});
  chunk("PLTE", palette);
  // Pack each row (most significant bits first), then apply the filter against the row above.
  const size_t row_bytes = (static_cast<size_t>(w) * bit_depth + 7) / 8;
  std::vector<uint8_t> previous(row_bytes, 0), raw;
  for (int y = 0; y < indices.rows; ++y) {
    std::vector<uint8_t> row(row_bytes, 0);
    for (int x = 0; x < indices.cols; ++x)
      row[x * bit_depth / 8] |= uint8_t(indices.at<uint8_t>(y, x) << (8 - bit_depth - (x * bit_depth) % 8));
    raw.push_back(uint8_t(filter));
    for (size_t i = 0; i < row_bytes; ++i) {
      const int a = i > 0 ? row[i - 1] : 0, b = previous[i], c = i > 0 ? previous[i - 1] : 0;
      const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
      const int paeth = (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c);
      const int predictor[5] = {0, a, b, (a + b) / 2, paeth};
      raw.push_back(uint8_t(row[i] - predictor[filter]));
    }
    previous = row;
  }
  uLongf size = compressBound(raw.size());
  std::vector<uint8_t> compressed(size);
  compress(compressed.data(), &size, raw.data(), raw.size());
  compressed.resize(size);
  chunk("IDAT", compressed);
  chunk("IEND", {});
  write_bytes(path, png);
}

// A gzip-compressed NIfTI-1 volume of int16 or float32 voxels (x fastest) with the given
// scaling and magic ("n+1": single file; "ni1" claims the voxels are in a separate .img).
template <typename Voxel>
void write_nifti(const std::string& path, int nx, int ny, int nz, const std::vector<Voxel>& voxels, float slope = 1.f,
                 float intercept = 0.f, const char* magic = "n+1") {
  static_assert(std::is_same_v<Voxel, int16_t> || std::is_same_v<Voxel, float>);
  unsigned char header[352] = {0};  // 348-byte header + 4-byte extension flag
  const auto put = [&](size_t offset, const void* value, size_t size) { std::memcpy(header + offset, value, size); };
  const int32_t sizeof_hdr = 348;
  const int16_t dim[8] = {3, static_cast<int16_t>(nx), static_cast<int16_t>(ny), static_cast<int16_t>(nz), 1, 1, 1, 1};
  const int16_t datatype = std::is_same_v<Voxel, float> ? 16 : 4, bitpix = 8 * sizeof(Voxel);
  const float vox_offset = 352.f;
  put(0, &sizeof_hdr, 4);
  put(40, dim, sizeof dim);
  put(70, &datatype, 2);
  put(72, &bitpix, 2);
  put(108, &vox_offset, 4);
  put(112, &slope, 4);
  put(116, &intercept, 4);
  std::memcpy(header + 344, magic, 4);
  fs::create_directories(fs::path(path).parent_path());
  gzFile file = gzopen(path.c_str(), "wb");
  gzwrite(file, header, sizeof header);
  gzwrite(file, voxels.data(), static_cast<unsigned>(voxels.size() * sizeof(Voxel)));
  gzclose(file);
}

// Starts sparser_prep in the background (output to `log`); returns its pid.
inline pid_t start_prep(const std::string& arguments, const std::string& log) {
  const std::string command = "exec " + std::string(SPARSER_BIN_DIR) + "/sparser_prep " + arguments + " > " + log + " 2>&1";
  const pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

// Waits for a process from start_prep; its exit status, or 128 + signal if killed.
inline int wait_prep(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Names in `directory` starting with `prefix` (e.g. leftover "out.partial-123").
inline std::vector<std::string> entries_starting_with(const fs::path& directory, const std::string& prefix) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(directory)) {
    const std::string name = entry.path().filename().string();
    if (name.compare(0, prefix.size(), prefix) == 0) names.push_back(name);
  }
  return names;
}

}  // namespace sparser::test

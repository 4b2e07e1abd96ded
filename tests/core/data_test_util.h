#pragma once
// Helpers for the data tests: scratch directories, running sparser_prep, and writers for
// source formats OpenCV cannot produce (palette PNG, NIfTI).
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <opencv2/core.hpp>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

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

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// An 8-bit palette PNG (colour type 3) holding `indices`, filter 0 on every row.
inline void write_palette_png(const std::string& path, const cv::Mat& indices) {
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
                 uint8_t(h >> 8), uint8_t(h), 8, 3, 0, 0, 0});
  std::vector<uint8_t> palette;
  for (int i = 0; i < 256; ++i) palette.insert(palette.end(), {uint8_t(i * 37), uint8_t(i * 91), uint8_t(i * 13)});
  chunk("PLTE", palette);
  std::vector<uint8_t> raw;
  for (int y = 0; y < indices.rows; ++y) {
    raw.push_back(0);
    raw.insert(raw.end(), indices.ptr<uint8_t>(y), indices.ptr<uint8_t>(y) + indices.cols);
  }
  uLongf size = compressBound(raw.size());
  std::vector<uint8_t> compressed(size);
  compress(compressed.data(), &size, raw.data(), raw.size());
  compressed.resize(size);
  chunk("IDAT", compressed);
  chunk("IEND", {});
  write_bytes(path, png);
}

// A gzip-compressed NIfTI-1 volume of int16 voxels (x fastest) with the given scaling.
inline void write_nifti_int16(const std::string& path, int nx, int ny, int nz, const std::vector<int16_t>& voxels,
                              float slope = 1.f, float intercept = 0.f) {
  unsigned char header[352] = {0};  // 348-byte header + 4-byte extension flag
  const auto put = [&](size_t offset, const void* value, size_t size) { std::memcpy(header + offset, value, size); };
  const int32_t sizeof_hdr = 348;
  const int16_t dim[8] = {3, static_cast<int16_t>(nx), static_cast<int16_t>(ny), static_cast<int16_t>(nz), 1, 1, 1, 1};
  const int16_t datatype = 4, bitpix = 16;
  const float vox_offset = 352.f;
  put(0, &sizeof_hdr, 4);
  put(40, dim, sizeof dim);
  put(70, &datatype, 2);
  put(72, &bitpix, 2);
  put(108, &vox_offset, 4);
  put(112, &slope, 4);
  put(116, &intercept, 4);
  std::memcpy(header + 344, "n+1", 4);
  fs::create_directories(fs::path(path).parent_path());
  gzFile file = gzopen(path.c_str(), "wb");
  gzwrite(file, header, sizeof header);
  gzwrite(file, voxels.data(), static_cast<unsigned>(voxels.size() * sizeof(int16_t)));
  gzclose(file);
}

}  // namespace sparser::test

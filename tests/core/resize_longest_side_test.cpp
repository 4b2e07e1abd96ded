#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>

#include "data/prefetcher.h"
#include "model/resize_longest_side.h"

using sparser::model::ResizeLongestSide;

TEST(ResizeLongestSide, OutputSizeRoundsHalfUpLikeOfficial) {
  ResizeLongestSide t(1024);
  EXPECT_EQ(t.output_size(480, 640), (std::pair<int64_t, int64_t>{768, 1024}));
  EXPECT_EQ(t.output_size(100, 75), (std::pair<int64_t, int64_t>{1024, 768}));
  EXPECT_EQ(t.output_size(333, 500), (std::pair<int64_t, int64_t>{682, 1024}));  // 681.98 → 682
  EXPECT_THROW(t.output_size(0, 10), std::invalid_argument);
}

// A side that rounds to 0 pixels: a clear error, not an OpenCV assertion deep in training
// (or a LibTorch trace in sparser_predict) naming neither the image nor the problem.
TEST(ResizeLongestSide, AnImageTooElongatedToKeepARowIsRefused) {
  const ResizeLongestSide t(1024);
  EXPECT_EQ(t.output_size(1, 2048), (std::pair<int64_t, int64_t>{1, 1024}));  // 0.5 rounds up
  try {
    t.output_size(1, 2100);
    ADD_FAILURE() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "a 1x2100 image (height x width) has no rows or columns left at a longest side of 1024 "
                           "pixels; crop it to a side ratio below 2048:1");
  }
  EXPECT_THROW(t.output_size(3000, 1), std::invalid_argument);

  sparser::data::Sample sample;
  sample.index = 7;
  sample.file_name = "train/long.png";
  sample.image = cv::Mat(1, 2100, CV_8UC3, cv::Scalar(1, 2, 3));
  try {
    sparser::data::prepare_sample(sample, {1024, 0, 0, 0}, 0);
    ADD_FAILURE() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()).rfind("sample 7 (train/long.png): a 1x2100 image", 0), 0u) << e.what();
  }
}

TEST(ResizeLongestSide, CoordsAndBoxesScaleWithTheImage) {
  ResizeLongestSide t(128);
  const auto xy = t.apply_coords({75.f, 100.f}, 100, 75);  // → 96 x 128
  EXPECT_FLOAT_EQ(xy[0], 96.f);
  EXPECT_FLOAT_EQ(xy[1], 128.f);
  const auto box = t.apply_box({0.f, 50.f, 37.5f, 100.f}, 100, 75);
  EXPECT_FLOAT_EQ(box[0], 0.f);
  EXPECT_FLOAT_EQ(box[1], 64.f);
  EXPECT_FLOAT_EQ(box[2], 48.f);
  EXPECT_FLOAT_EQ(box[3], 128.f);
}

TEST(ResizeLongestSide, ImageGetsTheOutputSize) {
  ResizeLongestSide t(64);
  cv::Mat image(100, 75, CV_8UC3, cv::Scalar(10, 20, 30));
  const auto out = t.apply_image(image);
  EXPECT_EQ(out.rows, 64);
  EXPECT_EQ(out.cols, 48);
  EXPECT_EQ(out.at<cv::Vec3b>(10, 10), cv::Vec3b(10, 20, 30));
}

namespace {
bool python_pil_available() { return std::system("/usr/bin/python3 -c 'import PIL' > /dev/null 2>&1") == 0; }
}  // namespace

// The official pre-processing resizes with PIL (via torchvision); ours must give the
// same bytes, enlarging and shrinking (antialiased), for any aspect ratio.
TEST(ResizeLongestSide, ImagesEqualPilsBilinearResize) {
  if (!python_pil_available()) GTEST_SKIP() << "/usr/bin/python3 with PIL (python3-pil) is not available";
  const auto dir = std::filesystem::temp_directory_path() / ("sparser_resize_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::mt19937 random(7);
  const std::vector<std::pair<int, std::pair<int, int>>> cases{
      {128, {100, 75}}, {64, {100, 75}}, {1024, {480, 640}}, {64, {333, 500}}, {96, {7, 200}}, {50, {50, 31}}};
  for (const auto& [target, size] : cases) {
    const auto [rows, cols] = size;
    cv::Mat rgb(rows, cols, CV_8UC3);
    for (int y = 0; y < rows; ++y)
      for (int x = 0; x < cols; ++x)
        rgb.at<cv::Vec3b>(y, x) = cv::Vec3b(random() % 256, (x * 7 + y * 3) % 256, (y * 255) / rows);
    cv::Mat bgr;
    cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
    const auto png = (dir / "in.png").string(), raw = (dir / "out.raw").string();
    ASSERT_TRUE(cv::imwrite(png, bgr));
    const sparser::model::ResizeLongestSide transform(target);
    const auto [h, w] = transform.output_size(rows, cols);
    const std::string script = "from PIL import Image; im = Image.open('" + png + "').convert('RGB'); "
                               "open('" + raw + "', 'wb').write(im.resize((" + std::to_string(w) + ", " +
                               std::to_string(h) + "), Image.BILINEAR).tobytes())";
    ASSERT_EQ(std::system(("/usr/bin/python3 -c \"" + script + "\"").c_str()), 0);
    std::ifstream in(raw, std::ios::binary);
    const std::vector<char> pil((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const cv::Mat ours = transform.apply_image(rgb);
    ASSERT_EQ(pil.size(), ours.total() * 3) << target << " " << rows << "x" << cols;
    int differing = 0;
    for (size_t i = 0; i < pil.size(); ++i) differing += static_cast<uint8_t>(pil[i]) != ours.data[i];
    EXPECT_EQ(differing, 0) << rows << "x" << cols << " → " << h << "x" << w;
  }
  std::filesystem::remove_all(dir);
}

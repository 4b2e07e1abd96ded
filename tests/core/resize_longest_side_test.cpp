#include <gtest/gtest.h>

#include "model/resize_longest_side.h"

using sparser::model::ResizeLongestSide;

TEST(ResizeLongestSide, OutputSizeRoundsHalfUpLikeOfficial) {
  ResizeLongestSide t(1024);
  EXPECT_EQ(t.output_size(480, 640), (std::pair<int64_t, int64_t>{768, 1024}));
  EXPECT_EQ(t.output_size(100, 75), (std::pair<int64_t, int64_t>{1024, 768}));
  EXPECT_EQ(t.output_size(333, 500), (std::pair<int64_t, int64_t>{682, 1024}));  // 681.98 → 682
  EXPECT_THROW(t.output_size(0, 10), std::invalid_argument);
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

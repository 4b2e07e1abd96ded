// COCO polygons rasterised as pycocotools does: integer boxes cover exactly their area,
// and in general a pixel is in the mask when its centre is inside the polygon.
#include <gtest/gtest.h>

#include <opencv2/core.hpp>

#include <cmath>

#include "data/coco_polygon.h"
#include "data_test_util.h"
#include "util/seeded_rng.h"

using namespace sparser::data;
using sparser::test::rect_mask;
using sparser::test::same_mask;

namespace {

cv::Mat rasterise(const std::vector<double>& xy, int h, int w) { return rle_decode(rle_from_polygon(xy, h, w)); }

std::vector<double> box(double x0, double y0, double x1, double y1) { return {x0, y0, x1, y0, x1, y1, x0, y1}; }

// Even-odd rule.
bool inside(const std::vector<double>& xy, double px, double py) {
  bool in = false;
  const size_t n = xy.size() / 2;
  for (size_t i = 0, j = n - 1; i < n; j = i++) {
    const double xi = xy[2 * i], yi = xy[2 * i + 1], xj = xy[2 * j], yj = xy[2 * j + 1];
    if ((yi > py) != (yj > py) && px < (xj - xi) * (py - yi) / (yj - yi) + xi) in = !in;
  }
  return in;
}

double distance_to_outline(const std::vector<double>& xy, double px, double py) {
  double best = 1e9;
  const size_t n = xy.size() / 2;
  for (size_t i = 0; i < n; ++i) {
    const double ax = xy[2 * i], ay = xy[2 * i + 1], bx = xy[2 * ((i + 1) % n)], by = xy[2 * ((i + 1) % n) + 1];
    const double dx = bx - ax, dy = by - ay, length2 = dx * dx + dy * dy;
    const double t = length2 > 0 ? std::clamp(((px - ax) * dx + (py - ay) * dy) / length2, 0.0, 1.0) : 0.0;
    best = std::min(best, std::hypot(px - (ax + t * dx), py - (ay + t * dy)));
  }
  return best;
}

}  // namespace

TEST(CocoPolygon, IntegerBoxCoversExactlyItsArea) {
  // pycocotools: frPyObjects([[x0,y0, x1,y0, x1,y1, x0,y1]], h, w) has area (x1-x0)*(y1-y0).
  EXPECT_TRUE(same_mask(rasterise(box(10, 5, 30, 15), 48, 64), rect_mask(48, 64, {10, 5, 20, 10})));
  EXPECT_TRUE(same_mask(rasterise(box(0, 0, 64, 48), 48, 64), rect_mask(48, 64, {0, 0, 64, 48})));
  EXPECT_TRUE(same_mask(rasterise(box(3, 7, 4, 8), 48, 64), rect_mask(48, 64, {3, 7, 1, 1})));
  // Vertex order and starting vertex do not matter.
  EXPECT_TRUE(same_mask(rasterise({30, 15, 30, 5, 10, 5, 10, 15}, 48, 64), rect_mask(48, 64, {10, 5, 20, 10})));
  EXPECT_TRUE(same_mask(rasterise({10, 15, 10, 5, 30, 5, 30, 15}, 48, 64), rect_mask(48, 64, {10, 5, 20, 10})));
}

TEST(CocoPolygon, ClipsToTheImageAndToleratesRepeatedVertices) {
  EXPECT_TRUE(same_mask(rasterise(box(-5, -3, 6, 4), 20, 30), rect_mask(20, 30, {0, 0, 6, 4})));
  EXPECT_TRUE(same_mask(rasterise(box(25, 12, 40, 30), 20, 30), rect_mask(20, 30, {25, 12, 5, 8})));
  EXPECT_TRUE(same_mask(rasterise({2, 2, 2, 2, 9, 2, 9, 2, 9, 6, 2, 6}, 20, 30), rect_mask(20, 30, {2, 2, 7, 4})));
  EXPECT_EQ(cv::countNonZero(rasterise({5, 5, 5, 5, 5, 5}, 20, 30)), 0);  // all one point
}

TEST(CocoPolygon, PixelIsInsideWhenItsCentreIsInsideThePolygon) {
  // Random star-shaped polygons with fractional vertices: every pixel whose centre is
  // clearly (> 0.4 px) inside or outside must agree. The pycocotools grid (1/5 pixel)
  // only decides pixels whose centre lies near the outline.
  sparser::util::SeededRng rng(uint64_t{42});
  const int h = 60, w = 70;
  int64_t decided = 0;
  for (int polygon = 0; polygon < 40; ++polygon) {
    const double cx = 10 + rng.below(50), cy = 10 + rng.below(40);
    const int points = 3 + static_cast<int>(rng.below(8));
    std::vector<double> xy;
    for (int k = 0; k < points; ++k) {
      const double angle = 2 * M_PI * (k + rng.below(1000) / 1200.0) / points;
      const double radius = 2 + rng.below(2500) / 100.0;
      xy.push_back(cx + radius * std::cos(angle));
      xy.push_back(cy + radius * std::sin(angle));
    }
    const cv::Mat mask = rasterise(xy, h, w);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        if (distance_to_outline(xy, x + 0.5, y + 0.5) <= 0.4) continue;
        ++decided;
        EXPECT_EQ(mask.at<uint8_t>(y, x) != 0, inside(xy, x + 0.5, y + 0.5))
            << "polygon " << polygon << ", pixel (" << x << ", " << y << ")";
      }
  }
  EXPECT_GT(decided, 100000);
}

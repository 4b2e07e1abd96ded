#include "data/coco_polygon.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>

namespace sparser::data {

namespace {

constexpr int kUpsample = 5;  // fine-grid points per pixel, as pycocotools

struct FinePoint {
  int u, v;  // x, y on the fine grid
};

// pycocotools rounds with a C cast of (value + 0.5): truncation toward zero, which is not
// floor() for negative values; matching it keeps masks identical near the left/top edge.
int round_like_c(double value) { return static_cast<int>(value + 0.5); }

// Every fine-grid point along the edge a→b, in the edge's own direction, stepping one
// fine cell along its longer axis; the other coordinate is interpolated and rounded.
void walk_edge(FinePoint a, FinePoint b, std::vector<FinePoint>& out) {
  const int dx = std::abs(b.u - a.u), dy = std::abs(b.v - a.v);
  if (dx == 0 && dy == 0) {  // a repeated vertex: one point (pycocotools divides 0 by 0 here)
    out.push_back(a);
    return;
  }
  const bool along_x = dx >= dy;
  // Interpolate from the endpoint with the smaller major coordinate, so the rounding is
  // the same whichever way the edge runs; emit the points in the edge's direction.
  const bool reversed = along_x ? a.u > b.u : a.v > b.v;
  const FinePoint low = reversed ? b : a, high = reversed ? a : b;
  const int steps = along_x ? dx : dy;
  const double slope = along_x ? static_cast<double>(high.v - low.v) / dx : static_cast<double>(high.u - low.u) / dy;
  for (int d = 0; d <= steps; ++d) {
    const int t = reversed ? steps - d : d;
    if (along_x)
      out.push_back({low.u + t, round_like_c(low.v + slope * t)});
    else
      out.push_back({round_like_c(low.u + slope * t), low.v + t});
  }
}

}  // namespace

CocoRle rle_from_polygon(const std::vector<double>& xy, int height, int width) {
  const size_t n = xy.size() / 2;
  std::vector<FinePoint> vertices(n);
  for (size_t i = 0; i < n; ++i)
    vertices[i] = {round_like_c(kUpsample * xy[2 * i]), round_like_c(kUpsample * xy[2 * i + 1])};
  std::vector<FinePoint> outline;
  for (size_t i = 0; i < n; ++i) walk_edge(vertices[i], vertices[(i + 1) % n], outline);

  // Where the outline steps from one fine column to the next across a pixel-centre line
  // (fine column 5x + 2 | 5x + 3 is pixel column x's centre), the row of the crossing,
  // rounded up to the next pixel centre, toggles the mask in that column.
  const int64_t h = height, w = width;
  std::vector<int64_t> toggles;  // column-major pixel positions x * h + y
  for (size_t j = 1; j < outline.size(); ++j) {
    const FinePoint& p = outline[j - 1];
    const FinePoint& q = outline[j];
    if (p.u == q.u) continue;
    const int column = std::min(p.u, q.u);
    if (column < 2 || (column - 2) % kUpsample != 0) continue;
    const int64_t x = (column - 2) / kUpsample;
    if (x > w - 1) continue;
    const int64_t row = std::min(p.v, q.v) - 2;  // (row + 0.5) / 5 - 0.5 = (v - 2) / 5 pixels
    const int64_t y = row <= 0 ? 0 : std::min<int64_t>((row + kUpsample - 1) / kUpsample, h);
    toggles.push_back(x * h + y);
  }
  toggles.push_back(h * w);
  std::sort(toggles.begin(), toggles.end());

  // Runs between consecutive toggles, starting with background; two toggles at the same
  // position cancel, so the run before them simply continues.
  CocoRle rle{height, width, {}};
  int64_t previous = 0;
  bool merge_next = false;
  for (size_t k = 0; k < toggles.size(); ++k) {
    const auto run = static_cast<uint32_t>(toggles[k] - previous);
    previous = toggles[k];
    if (merge_next) {
      rle.counts.back() += run;
      merge_next = false;
    } else if (run == 0 && k > 0) {
      merge_next = true;
    } else {
      rle.counts.push_back(run);
    }
  }
  return rle;
}

}  // namespace sparser::data

#pragma once
// COCO polygon segmentations rasterised exactly as pycocotools does (rleFrPoly in its
// maskApi.c), so masks match what COCO-trained tools and the official evaluation see.
//
// Coordinates are continuous, pixel (i, j) covering [i, i+1) x [j, j+1). The polygon is
// walked on a grid 5 times finer than the pixels; wherever its outline crosses the
// vertical line through a column's pixel centres, the crossing's row (rounded up to a
// pixel centre) toggles inside/outside in that column. In effect a pixel is inside when
// its centre is inside the polygon (decided at 1/5 pixel), so the box
// [x0,y0, x1,y0, x1,y1, x0,y1] with integer corners covers exactly (x1-x0) * (y1-y0)
// pixels. Parts of the polygon outside the image are clipped.
#include <vector>

#include "data/coco_rle.h"

namespace sparser::data {

// `xy` = x0, y0, x1, y1, ... (at least 3 points; the caller drops shorter parts).
CocoRle rle_from_polygon(const std::vector<double>& xy, int height, int width);

}  // namespace sparser::data

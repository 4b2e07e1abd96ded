#pragma once
// COCO-format instance annotations (used by the coco, nwpu and ssdd subcommands).
//
// Segmentations: polygons (one or more per annotation, OR-ed together), uncompressed RLE
// ({"counts": [...], "size": [h, w]}) and compressed RLE ({"counts": "<string>", ...}).
// Polygon vertices are continuous coordinates where pixel (i, j) spans [i, i+1) × [j, j+1);
// they are rasterised with cv::fillPoly at 1/16 pixel after shifting by -0.5 to OpenCV's
// pixel-centre convention (fillPoly includes the outline's pixels: right/bottom edges come
// out one pixel wider than pycocotools'). Crowd annotations (iscrowd = 1) are skipped unless kept.
#include <memory>
#include <string>
#include <vector>

#include "conversion.h"

namespace sparser::prep {

struct CocoAnnotation {
  int32_t category_id = 0;
  bool crowd = false;
  std::vector<std::vector<float>> polygons;  // flat x, y lists
  std::vector<uint32_t> rle_counts;          // RLE (either form, decoded to counts)
  int rle_height = 0, rle_width = 0;
  bool is_rle = false;
};

struct CocoImage {
  int64_t id = 0;
  std::string file_name;
  int height = 0, width = 0;
  std::vector<CocoAnnotation> annotations;
};

struct CocoIndex {
  std::string path;
  std::vector<CocoImage> images;  // in file order
  std::string class_names_json;   // {"<category id>": "<name>"}
};

// Parses the JSON; errors name the file and the offending annotation.
std::shared_ptr<const CocoIndex> load_coco_index(const std::string& annotation_path);

// A job that reads images_dir/<file_name> and rasterises image `position`'s annotations.
ImageJob coco_image_job(std::shared_ptr<const CocoIndex> index, size_t position, const std::string& images_dir,
                        const std::string& split, bool keep_crowd);

}  // namespace sparser::prep

#pragma once
// COCO-format instance annotations (used by the coco, nwpu and ssdd subcommands).
//
// Segmentations: polygons (one or more parts per annotation, OR-ed together, rasterised
// exactly as pycocotools: data/coco_polygon.h), uncompressed RLE ({"counts": [...],
// "size": [h, w]}) and compressed RLE ({"counts": "<string>", ...}). A polygon part with
// fewer than 3 points (or an odd number of coordinates) is dropped and counted; an
// annotation left without parts is dropped and counted too. Crowd annotations (iscrowd = 1) are skipped
// (and counted) unless kept.
#include <memory>
#include <string>
#include <vector>

#include "conversion.h"

namespace sparser::prep {

struct CocoAnnotation {
  int32_t category_id = 0;
  bool crowd = false;
  std::vector<std::vector<double>> polygons;  // flat x, y lists, as in the file
  std::vector<uint32_t> rle_counts;           // RLE (either form, decoded to counts)
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

// Adds one job per image of `annotation_path` to `plan` as split `split` (images in
// `images_dir`), and adds its categories to the plan's class names (a category id that an
// earlier split names differently is a SourceError).
void add_coco_split(Plan& plan, const std::string& annotation_path, const std::string& images_dir,
                    const std::string& split, bool keep_crowd);

}  // namespace sparser::prep

#include "coco_json.h"

#include <opencv2/core.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "data/coco_polygon.h"
#include "data/coco_rle.h"

namespace sparser::prep {

namespace {

CocoAnnotation parse_annotation(const nlohmann::json& a) {
  CocoAnnotation out;
  out.category_id = a.at("category_id").get<int32_t>();
  out.crowd = a.value("iscrowd", 0) != 0;
  const auto& seg = a.at("segmentation");
  if (seg.is_array()) {
    for (const auto& polygon : seg) out.polygons.push_back(polygon.get<std::vector<double>>());
    return out;
  }
  out.is_rle = true;
  const auto size = seg.at("size").get<std::vector<int>>();
  if (size.size() != 2) throw std::runtime_error("RLE size must be [height, width]");
  out.rle_height = size[0];
  out.rle_width = size[1];
  const auto& counts = seg.at("counts");
  out.rle_counts = counts.is_string() ? data::rle_counts_from_string(counts.get<std::string>())
                                      : counts.get<std::vector<uint32_t>>();
  return out;
}

// The annotation's mask at the image size; empty if no polygon part is usable (each
// unusable part is counted in *parts_dropped).
cv::Mat rasterise(const CocoAnnotation& a, int height, int width, int64_t* parts_dropped) {
  if (a.is_rle) {
    if (a.rle_height != height || a.rle_width != width)
      throw std::runtime_error("RLE size " + std::to_string(a.rle_height) + "x" + std::to_string(a.rle_width) +
                               " differs from the image's " + std::to_string(height) + "x" + std::to_string(width));
    return data::rle_decode({a.rle_height, a.rle_width, a.rle_counts});
  }
  cv::Mat mask;
  for (const auto& part : a.polygons) {
    if (part.size() < 6 || part.size() % 2 != 0) {
      ++*parts_dropped;
      continue;
    }
    const cv::Mat part_mask = data::rle_decode(data::rle_from_polygon(part, height, width));
    if (mask.empty()) mask = part_mask;
    else mask |= part_mask;
  }
  return mask;
}

}  // namespace

std::shared_ptr<const CocoIndex> load_coco_index(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw SourceError(path + ": missing or unreadable annotation file");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    throw SourceError(path + ": not valid JSON: " + e.what());
  }
  auto index = std::make_shared<CocoIndex>();
  index->path = path;
  std::map<int64_t, size_t> position_of;
  try {
    for (const auto& image : j.at("images")) {
      CocoImage ci;
      ci.id = image.at("id").get<int64_t>();
      ci.file_name = image.at("file_name").get<std::string>();
      ci.height = image.at("height").get<int>();
      ci.width = image.at("width").get<int>();
      // Annotations find their image by id: a repeated id would give them all to one image.
      if (!position_of.emplace(ci.id, index->images.size()).second)
        throw SourceError(path + ": images: id " + std::to_string(ci.id) + " appears more than once (" +
                          index->images[position_of[ci.id]].file_name + ", " + ci.file_name + ")");
      index->images.push_back(std::move(ci));
    }
    nlohmann::json names = nlohmann::json::object();
    for (const auto& c : j.value("categories", nlohmann::json::array()))
      names[std::to_string(c.at("id").get<int>())] = c.value("name", "");
    index->class_names_json = names.dump();
  } catch (const nlohmann::json::exception& e) {
    throw SourceError(path + ": images/categories: " + e.what());
  }
  const auto& annotations = j.value("annotations", nlohmann::json::array());
  for (size_t k = 0; k < annotations.size(); ++k) {
    const auto& a = annotations[k];
    try {
      const auto it = position_of.find(a.at("image_id").get<int64_t>());
      if (it == position_of.end()) throw std::runtime_error("image_id not among the images");
      index->images[it->second].annotations.push_back(parse_annotation(a));
    } catch (const std::exception& e) {
      throw SourceError(path + ": annotations[" + std::to_string(k) + "] (id " + a.value("id", nlohmann::json()).dump() +
                        "): " + e.what());
    }
  }
  return index;
}

ImageJob coco_image_job(std::shared_ptr<const CocoIndex> index, size_t position, const std::string& images_dir,
                        const std::string& split, bool keep_crowd) {
  const std::string path = (std::filesystem::path(images_dir) / index->images[position].file_name).string();
  return {split, path, [index, position, path, keep_crowd] {
            const CocoImage& info = index->images[position];
            SourceImage image = read_source_image(path, info.file_name);
            if (image.height != info.height || image.width != info.width)
              throw SourceError(path + ": image is " + std::to_string(image.width) + "x" +
                                std::to_string(image.height) + ", " + index->path + " says " +
                                std::to_string(info.width) + "x" + std::to_string(info.height));
            image.source_id = info.id;
            for (size_t k = 0; k < info.annotations.size(); ++k) {
              const auto& a = info.annotations[k];
              if (a.crowd && !keep_crowd) {
                ++image.crowd_skipped;
                continue;
              }
              try {
                cv::Mat mask = rasterise(a, info.height, info.width, &image.polygon_parts_dropped);
                if (mask.empty()) ++image.annotations_without_mask;
                else image.masks.push_back({std::move(mask), a.category_id});
              } catch (const std::exception& e) {
                throw SourceError(index->path + ": image " + std::to_string(info.id) + ", annotation " +
                                  std::to_string(k) + ": " + e.what());
              }
            }
            return std::vector<SourceImage>{std::move(image)};
          }};
}

void add_coco_split(Plan& plan, const std::string& annotation_path, const std::string& images_dir,
                    const std::string& split, bool keep_crowd) {
  const auto index = load_coco_index(annotation_path);
  // Every split's manifest gets the categories of all the plan's files.
  auto names = nlohmann::json::parse(plan.class_names_json);
  const auto categories = nlohmann::json::parse(index->class_names_json);
  for (const auto& category : categories.items()) {
    const auto& id = category.key();
    if (names.contains(id) && names[id] != category.value())
      throw SourceError(annotation_path + ": category " + id + " is " + category.value().dump() +
                        ", an earlier split's file says " + names[id].dump());
    names[id] = category.value();
  }
  plan.class_names_json = names.dump();
  for (size_t i = 0; i < index->images.size(); ++i)
    plan.jobs.push_back(coco_image_job(index, i, images_dir, split, keep_crowd));
}

}  // namespace sparser::prep

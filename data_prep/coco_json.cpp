#include "coco_json.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "data/coco_rle.h"

namespace sparser::prep {

namespace {

CocoAnnotation parse_annotation(const nlohmann::json& a) {
  CocoAnnotation out;
  out.category_id = a.at("category_id").get<int32_t>();
  out.crowd = a.value("iscrowd", 0) != 0;
  const auto& seg = a.at("segmentation");
  if (seg.is_array()) {
    for (const auto& polygon : seg) out.polygons.push_back(polygon.get<std::vector<float>>());
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

cv::Mat rasterise(const CocoAnnotation& a, int height, int width) {
  if (a.is_rle) {
    if (a.rle_height != height || a.rle_width != width)
      throw std::runtime_error("RLE size " + std::to_string(a.rle_height) + "x" + std::to_string(a.rle_width) +
                               " differs from the image's " + std::to_string(height) + "x" + std::to_string(width));
    return data::rle_decode({a.rle_height, a.rle_width, a.rle_counts});
  }
  constexpr int kShift = 4;
  std::vector<std::vector<cv::Point>> polygons;
  for (const auto& flat : a.polygons) {
    if (flat.size() < 6 || flat.size() % 2) throw std::runtime_error("polygon with fewer than 3 points");
    std::vector<cv::Point> points;
    for (size_t i = 0; i < flat.size(); i += 2)
      points.emplace_back(static_cast<int>(std::lround((flat[i] - 0.5f) * (1 << kShift))),
                          static_cast<int>(std::lround((flat[i + 1] - 0.5f) * (1 << kShift))));
    polygons.push_back(std::move(points));
  }
  cv::Mat mask(height, width, CV_8U, cv::Scalar(0));
  cv::fillPoly(mask, polygons, cv::Scalar(1), cv::LINE_8, kShift);
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
      position_of[ci.id] = index->images.size();
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
            SourceImage image;
            auto bytes = read_file_bytes(path);
            const cv::Mat decoded = decode_image_file(path, bytes, cv::IMREAD_COLOR);
            if (decoded.rows != info.height || decoded.cols != info.width)
              throw SourceError(path + ": image is " + std::to_string(decoded.cols) + "x" +
                                std::to_string(decoded.rows) + ", " + index->path + " says " +
                                std::to_string(info.width) + "x" + std::to_string(info.height));
            image.encoded = storable_image_bytes(path, std::move(bytes), decoded);
            image.height = info.height;
            image.width = info.width;
            image.file_name = info.file_name;
            image.source_id = info.id;
            for (size_t k = 0; k < info.annotations.size(); ++k) {
              const auto& a = info.annotations[k];
              if (a.crowd && !keep_crowd) {
                ++image.crowd_skipped;
                continue;
              }
              try {
                image.masks.push_back({rasterise(a, info.height, info.width), a.category_id});
              } catch (const std::exception& e) {
                throw SourceError(index->path + ": image " + std::to_string(info.id) + ", annotation " +
                                  std::to_string(k) + ": " + e.what());
              }
            }
            return std::vector<SourceImage>{std::move(image)};
          }};
}

}  // namespace sparser::prep

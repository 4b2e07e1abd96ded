// voc: PASCAL VOC2012 as distributed: JPEGImages/<id>.jpg, SegmentationObject/<id>.png
// (palette index = object number), SegmentationClass/<id>.png (palette index = class),
// split lists in ImageSets/Segmentation/{train,val}.txt. Index 255 marks object borders
// and "difficult" regions: such pixels belong to no instance.
#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "palette_png.h"
#include "subcommands.h"

namespace sparser::prep {

namespace {

const char* const kVocClasses[] = {"background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus",
                                   "car", "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike",
                                   "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"};

std::vector<SourceImage> load_voc_image(const std::filesystem::path& root, const std::string& id) {
  const std::string image_path = (root / "JPEGImages" / (id + ".jpg")).string();
  const std::string object_path = (root / "SegmentationObject" / (id + ".png")).string();
  const std::string class_path = (root / "SegmentationClass" / (id + ".png")).string();
  SourceImage image = read_source_image(image_path, "JPEGImages/" + id + ".jpg");
  image.meta_json = nlohmann::json{{"voc_id", id}}.dump();
  const cv::Mat objects = read_png_indices(object_path, read_file_bytes(object_path));
  const cv::Mat classes = read_png_indices(class_path, read_file_bytes(class_path));
  const cv::Size size(image.width, image.height);
  if (objects.size() != size) throw SourceError(object_path + ": label size differs from " + image_path);
  if (classes.size() != size) throw SourceError(class_path + ": label size differs from " + image_path);
  // One pass: votes[object][class] = pixels of the object under each class index.
  std::vector<std::array<int, 256>> votes(256, std::array<int, 256>{});
  for (int y = 0; y < objects.rows; ++y)
    for (int x = 0; x < objects.cols; ++x) ++votes[objects.at<uint8_t>(y, x)][classes.at<uint8_t>(y, x)];
  for (int object = 1; object < 255; ++object) {
    auto& v = votes[object];
    const bool present = std::any_of(v.begin(), v.end(), [](int pixels) { return pixels > 0; });
    v[0] = v[255] = 0;  // the object's class: the most common class index 1..254 under it
    const auto best = std::max_element(v.begin(), v.end());
    if (*best == 0) {
      if (present) ++image.annotations_without_mask;  // drawn, but only over background or borders
      continue;
    }
    const int class_id = static_cast<int>(best - v.begin());
    if (class_id > 20)
      throw SourceError(class_path + ": object " + std::to_string(object) + " lies on class index " +
                        std::to_string(class_id) + " (VOC has 1..20)");
    image.masks.push_back({objects == object, class_id});
  }
  return {std::move(image)};
}

}  // namespace

Subcommand voc_subcommand() {
  return {"voc", "PASCAL VOC2012 SegmentationObject + SegmentationClass → train/val shards",
          [](po::options_description& o) {
            o.add_options()("root", po::value<std::string>()->required(),
                            "VOC2012 directory (JPEGImages/, SegmentationObject/, SegmentationClass/, ImageSets/)");
          },
          [](const po::variables_map& vm, const CommonOptions&) {
            const std::filesystem::path root = vm["root"].as<std::string>();
            nlohmann::json names = nlohmann::json::object();
            for (int c = 1; c <= 20; ++c) names[std::to_string(c)] = kVocClasses[c];
            Plan plan{"voc", {"train", "val"}, names.dump(), {}};
            for (const std::string split : {"train", "val"}) {
              const std::string list = (root / "ImageSets" / "Segmentation" / (split + ".txt")).string();
              std::ifstream in(list);
              if (!in) throw SourceError(list + ": missing split list");
              for (std::string id; in >> id;)
                plan.jobs.push_back({split, (root / "SegmentationObject" / (id + ".png")).string(),
                                     [root, id] { return load_voc_image(root, id); }});
            }
            return plan;
          }};
}

}  // namespace sparser::prep

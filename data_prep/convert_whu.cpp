// whu: WHU building dataset (aerial tiles) as distributed: <root>/{train,val,test}/image/*.tif
// with binary labels of the same name in <root>/{split}/label/. Instances are the
// 8-connected components of the label; class id 1 = building.
#include <filesystem>

#include <opencv2/imgcodecs.hpp>

#include "subcommands.h"

namespace sparser::prep {

namespace {

std::vector<SourceImage> load_whu_tile(const std::string& image_path, const std::string& label_path,
                                       const std::string& file_name) {
  SourceImage image = read_source_image(image_path, file_name);
  // Binary: a pixel is building where any colour channel is non-zero. Read unchanged, as
  // converting to 8-bit grey would turn a 16-bit label's 1 into 0.
  const cv::Mat label = decode_image_file(label_path, read_file_bytes(label_path), cv::IMREAD_UNCHANGED);
  if (label.size() != cv::Size(image.width, image.height))
    throw SourceError(label_path + ": label size differs from " + image_path);
  std::vector<cv::Mat> channels;
  cv::split(label, channels);
  if (channels.size() == 4) channels.pop_back();  // alpha
  cv::Mat building = channels[0] != 0;
  for (size_t c = 1; c < channels.size(); ++c) building |= channels[c] != 0;
  image.masks = connected_component_masks(building, 1);
  return {std::move(image)};
}

}  // namespace

Subcommand whu_subcommand() {
  return {"whu", "WHU building tiles (TIFF image + binary label) → train/val/test shards",
          [](po::options_description& o) {
            o.add_options()("root", po::value<std::string>()->required(),
                            "WHU root with {train,val,test}/{image,label}/ (a missing split is skipped)");
          },
          [](const po::variables_map& vm, const CommonOptions&) {
            namespace fs = std::filesystem;
            const fs::path root = vm["root"].as<std::string>();
            Plan plan{"whu", {}, "{\"1\": \"building\"}", {}};
            for (const std::string split : {"train", "val", "test"}) {
              if (!fs::is_directory(root / split)) continue;
              plan.splits.push_back(split);
              for (const auto& image_path : list_files((root / split / "image").string(), {".tif", ".tiff", ".png"})) {
                const auto name = fs::path(image_path).filename();
                const std::string label_path = (root / split / "label" / name).string();
                const std::string file_name = split + "/image/" + name.string();
                plan.jobs.push_back({split, image_path, [image_path, label_path, file_name] {
                                       return load_whu_tile(image_path, label_path, file_name);
                                     }});
              }
            }
            if (plan.splits.empty()) throw SourceError(root.string() + ": no train/, val/ or test/ directory");
            return plan;
          }};
}

}  // namespace sparser::prep

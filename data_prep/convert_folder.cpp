// folder: a user's own data: <root>/images/<stem>.<ext> with <root>/masks/<stem>.png
// (any OpenCV-readable single-channel format, same stem). Each non-zero mask value is a
// class; an instance is either all pixels of one value (--instances label) or one
// 8-connected component of each value (--instances components). Images are split
// train/val by a seeded shuffle (--val-fraction, default 0: everything in train).
#include <filesystem>
#include <map>

#include <opencv2/imgcodecs.hpp>

#include "subcommands.h"

namespace sparser::prep {

namespace {

std::vector<SourceImage> load_folder_image(const std::string& image_path, const std::string& mask_path,
                                           bool components) {
  SourceImage image;
  auto bytes = read_file_bytes(image_path);
  const cv::Mat decoded = decode_image_file(image_path, bytes, cv::IMREAD_COLOR);
  image.encoded = storable_image_bytes(image_path, std::move(bytes), decoded);
  image.height = decoded.rows;
  image.width = decoded.cols;
  image.file_name = "images/" + std::filesystem::path(image_path).filename().string();
  const cv::Mat label = decode_image_file(mask_path, read_file_bytes(mask_path), cv::IMREAD_GRAYSCALE);
  if (label.size() != decoded.size()) throw SourceError(mask_path + ": mask size differs from " + image_path);
  double max_value = 0;
  cv::minMaxLoc(label, nullptr, &max_value);
  for (int value = 1; value <= static_cast<int>(max_value); ++value) {
    const cv::Mat mask = label == value;
    if (cv::countNonZero(mask) == 0) continue;
    if (components) {
      for (auto& m : connected_component_masks(mask, value)) image.masks.push_back(std::move(m));
    } else {
      image.masks.push_back({mask, value});
    }
  }
  return {std::move(image)};
}

}  // namespace

Subcommand folder_subcommand() {
  return {"folder", "your own images/ + masks/ (same stem) → train[/val] shards",
          [](po::options_description& o) {
            o.add_options()("root", po::value<std::string>()->required(), "directory with images/ and masks/")(
                "instances", po::value<std::string>()->default_value("label"),
                "label: one instance per mask value; components: one per connected component of each value")(
                "val-fraction", po::value<double>()->default_value(0.0), "share of images in val (seeded)");
          },
          [](const po::variables_map& vm, const CommonOptions& common) {
            namespace fs = std::filesystem;
            const fs::path root = vm["root"].as<std::string>();
            const std::string mode = vm["instances"].as<std::string>();
            if (mode != "label" && mode != "components")
              throw po::error("--instances must be 'label' or 'components', not '" + mode + "'");
            const auto images = list_files((root / "images").string(), {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"});
            std::map<std::string, std::string> masks;  // stem → path
            for (const auto& m : list_files((root / "masks").string(), {".png", ".tif", ".tiff", ".bmp"}))
              masks[fs::path(m).stem().string()] = m;
            const double val_fraction = vm["val-fraction"].as<double>();
            const auto in_val = seeded_split(images.size(), val_fraction, common.seed);
            Plan plan{"folder", {"train"}, "{}", {}};
            if (val_fraction > 0) plan.splits.push_back("val");
            for (size_t i = 0; i < images.size(); ++i) {
              const std::string image_path = images[i];
              const auto it = masks.find(fs::path(image_path).stem().string());
              const std::string mask_path =
                  it != masks.end() ? it->second : (root / "masks" / (fs::path(image_path).stem().string() + ".png")).string();
              const bool components = mode == "components";
              plan.jobs.push_back({in_val[i] ? "val" : "train", image_path, [image_path, mask_path, components] {
                                     return load_folder_image(image_path, mask_path, components);
                                   }});
            }
            return plan;
          }};
}

}  // namespace sparser::prep

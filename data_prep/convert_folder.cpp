// folder: a user's own data: <root>/images/<stem>.<ext> with <root>/masks/<stem>.<ext>
// (same stem): single-channel label images, 8- or 16-bit, or palette PNGs read by index
// (label_image.h); colour masks are refused. Each non-zero mask value is a class; an
// instance is either all pixels of one value (--instances label) or one 8-connected
// component of each value (--instances components); --ignore-value V leaves the pixels of
// value V (e.g. VOC-style 255 borders) out of every instance. Images are split train/val
// by a seeded shuffle (--val-fraction, default 0: everything in train).
#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include "label_image.h"
#include "subcommands.h"

namespace sparser::prep {

namespace {

template <typename T>
void mark_values(const cv::Mat& label, std::vector<bool>& present) {
  for (int y = 0; y < label.rows; ++y) {
    const T* row = label.ptr<T>(y);
    for (int x = 0; x < label.cols; ++x) present[row[x]] = true;
  }
}

// The distinct non-zero values of a CV_8U or CV_16U label image, ascending.
std::vector<int> label_values(const cv::Mat& label) {
  std::vector<bool> present(label.depth() == CV_8U ? 256 : 65536, false);
  if (label.depth() == CV_8U) mark_values<uint8_t>(label, present);
  else mark_values<uint16_t>(label, present);
  std::vector<int> values;
  for (size_t v = 1; v < present.size(); ++v)
    if (present[v]) values.push_back(static_cast<int>(v));
  return values;
}

std::vector<SourceImage> load_folder_image(const std::string& image_path, const std::string& mask_path,
                                           bool components, std::optional<int> ignored_value) {
  SourceImage image = read_source_image(image_path, "images/" + std::filesystem::path(image_path).filename().string());
  const cv::Mat label = read_label_image(mask_path);
  if (label.rows != image.height || label.cols != image.width)
    throw SourceError(mask_path + ": mask is " + std::to_string(label.cols) + "x" + std::to_string(label.rows) +
                      ", the image " + image_path + " is " + std::to_string(image.width) + "x" +
                      std::to_string(image.height));
  for (const int value : label_values(label)) {
    if (value == ignored_value) continue;
    const cv::Mat mask = label == value;
    if (components) {
      for (auto& m : connected_component_masks(mask, value)) image.masks.push_back(std::move(m));
    } else {
      image.masks.push_back({mask, value});
    }
  }
  return {std::move(image)};
}

// Files under images/ and masks/ that no job reads, each with the reason, so that nothing
// the user put there disappears without a word.
std::vector<std::string> unused_files(const std::filesystem::path& root, const std::vector<std::string>& images,
                                      const std::map<std::string, std::string>& masks) {
  namespace fs = std::filesystem;
  const std::set<std::string> listed(images.begin(), images.end());
  std::set<std::string> image_stems;
  for (const auto& i : images) image_stems.insert(fs::path(i).stem().string());
  std::vector<std::string> unused;
  for (const auto& entry : fs::directory_iterator(root / "images"))
    if (entry.is_regular_file() && !listed.count(entry.path().string()))
      unused.push_back(entry.path().string() + ": not an image extension (png, jpg, jpeg, tif, tiff, bmp, webp)");
  for (const auto& entry : fs::directory_iterator(root / "masks")) {
    if (!entry.is_regular_file()) continue;
    const std::string path = entry.path().string();
    const auto used = masks.find(entry.path().stem().string());
    if (used == masks.end())
      unused.push_back(path + ": not a mask extension (png, tif, tiff, bmp)");
    else if (used->second != path)
      unused.push_back(path + ": " + used->second + " is the mask of this stem");
    else if (!image_stems.count(used->first))
      unused.push_back(path + ": no image of the same stem in images/");
  }
  std::sort(unused.begin(), unused.end());
  return unused;
}

}  // namespace

Subcommand folder_subcommand() {
  return {"folder", "your own images/ + masks/ (same stem) → train[/val] shards",
          [](po::options_description& o) {
            o.add_options()("root", po::value<std::string>()->required(),
                            "directory with images/ and masks/ (label images: 8/16-bit grey or palette PNG)")(
                "instances", po::value<std::string>()->default_value("label"),
                "label: one instance per mask value; components: one per connected component of each value")(
                "val-fraction", po::value<double>()->default_value(0.0, "0"), "share of images in val (seeded)")(
                "ignore-value", po::value<int>(),
                "a mask value that is no class, e.g. 255 for VOC-style borders: its pixels belong to no instance");
          },
          [](const po::variables_map& vm, const CommonOptions& common) {
            namespace fs = std::filesystem;
            const fs::path root = vm["root"].as<std::string>();
            const std::string mode = vm["instances"].as<std::string>();
            if (mode != "label" && mode != "components")
              throw po::error("--instances must be 'label' or 'components', not '" + mode + "'");
            const auto images =
                list_files((root / "images").string(), {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"});
            std::map<std::string, std::string> masks;  // stem → path
            for (const auto& m : list_files((root / "masks").string(), {".png", ".tif", ".tiff", ".bmp"}))
              masks[fs::path(m).stem().string()] = m;
            std::optional<int> ignored_value;
            if (vm.count("ignore-value")) {
              ignored_value = vm["ignore-value"].as<int>();
              if (*ignored_value < 1 || *ignored_value > 65535)
                throw po::error("--ignore-value must be a mask value from 1 to 65535");
            }
            const double val_fraction = vm["val-fraction"].as<double>();
            const auto in_val = seeded_split(images.size(), val_fraction, common.seed, "--val-fraction");
            Plan plan{"folder", {"train"}, "{}", {}};
            if (val_fraction > 0) plan.splits.push_back("val");
            plan.ignored_files = unused_files(root, images, masks);
            for (size_t i = 0; i < images.size(); ++i) {
              const std::string image_path = images[i];
              const auto it = masks.find(fs::path(image_path).stem().string());
              const std::string mask_path =
                  it != masks.end() ? it->second : (root / "masks" / (fs::path(image_path).stem().string() + ".png")).string();
              const bool components = mode == "components";
              plan.jobs.push_back(
                  {in_val[i] ? "val" : "train", image_path, [image_path, mask_path, components, ignored_value] {
                     return load_folder_image(image_path, mask_path, components, ignored_value);
                   }});
            }
            return plan;
          }};
}

}  // namespace sparser::prep

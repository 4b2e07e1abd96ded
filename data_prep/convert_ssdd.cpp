// ssdd: SAR Ship Detection Dataset with polygon instance masks, from either of its
// COCO-format releases (docs/data.md names them):
//   --root: the official release's (Zhang et al. 2021) PSeg_SSDD/coco_style directory:
//     <root>/annotations/train.json + <root>/images/train/, and the test split
//     <root>/annotations/test.json + <root>/images/test/ (or test_inshore, test_offshore:
//     --test-subset);
//   --annotations + --images: one COCO JSON over all 1160 images (the instance masks of
//     chaozhong2010/VHR-10_dataset_coco's SSDD.json), split by the official rule: images
//     whose file number ends in 1 or 9 are test.
// SSDD has no validation split; its test images are written as split "val", the split
// the experiment configs evaluate on.
#include <filesystem>

#include "coco_json.h"
#include "subcommands.h"

namespace sparser::prep {

namespace {

namespace fs = std::filesystem;

// The official SSDD test split: file numbers (the stem, e.g. "000231") ending in 1 or 9.
bool is_official_test_image(const std::string& annotation_path, const std::string& file_name) {
  const std::string stem = fs::path(file_name).stem().string();
  if (stem.empty() || stem.find_first_not_of("0123456789") != std::string::npos)
    throw SourceError(annotation_path + ": image '" + file_name +
                      "' is not named by its SSDD number (NNNNNN.jpg), so the official train/test rule "
                      "cannot place it; use --root with the release's own train/test files");
  return stem.back() == '1' || stem.back() == '9';
}

Plan plan_from_release_root(const fs::path& root, const std::string& subset, bool keep_crowd) {
  if (subset != "all" && subset != "inshore" && subset != "offshore")
    throw po::error("--test-subset must be all, inshore or offshore, not '" + subset + "'");
  Plan plan{"ssdd", {"train", "val"}, "{}", {}};
  add_coco_split(plan, (root / "annotations" / "train.json").string(), (root / "images" / "train").string(), "train",
                 keep_crowd);
  const std::string test = subset == "all" ? "test" : "test_" + subset;
  add_coco_split(plan, (root / "annotations" / (test + ".json")).string(), (root / "images" / test).string(), "val",
                 keep_crowd);
  return plan;
}

Plan plan_from_single_json(const std::string& annotations, const std::string& images, bool keep_crowd) {
  const auto index = load_coco_index(annotations);
  Plan plan{"ssdd", {"train", "val"}, index->class_names_json, {}};
  for (size_t i = 0; i < index->images.size(); ++i) {
    const bool test = is_official_test_image(annotations, index->images[i].file_name);
    plan.jobs.push_back(coco_image_job(index, i, images, test ? "val" : "train", keep_crowd));
  }
  return plan;
}

}  // namespace

Subcommand ssdd_subcommand() {
  return {"ssdd", "SSDD SAR ships (COCO-format polygons: official release or one JSON) → train/val shards",
          [](po::options_description& o) {
            o.add_options()("root", po::value<std::string>(),
                            "the official release's PSeg_SSDD/coco_style: annotations/{train,test}.json, "
                            "images/{train,test}/")(
                "test-subset", po::value<std::string>()->default_value("all"), "with --root: all, inshore or offshore")(
                "annotations", po::value<std::string>(), "instead of --root: one COCO JSON of all images")(
                "images", po::value<std::string>(), "with --annotations: the image directory");
          },
          [](const po::variables_map& vm, const CommonOptions& common) {
            const bool release = vm.count("root") > 0;
            const bool single = vm.count("annotations") > 0 || vm.count("images") > 0;
            if (release == single || (single && (!vm.count("annotations") || !vm.count("images"))))
              throw po::error("give either --root, or both --annotations and --images");
            return release ? plan_from_release_root(vm["root"].as<std::string>(), vm["test-subset"].as<std::string>(),
                                                    common.keep_crowd)
                           : plan_from_single_json(vm["annotations"].as<std::string>(),
                                                   vm["images"].as<std::string>(), common.keep_crowd);
          }};
}

}  // namespace sparser::prep

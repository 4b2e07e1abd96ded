// nwpu: NWPU VHR-10 with instance masks. The official NWPU VHR-10 download has boxes only;
// the masks come from the COCO-format re-annotation chaozhong2010/VHR-10_dataset_coco
// (Su et al., IGARSS 2019): "positive image set/" (650 JPEGs, --images) and
// "annotations.json" (--annotations). Images are split train/val by a seeded shuffle
// (default 70/30, the release's own ratio; its split script is unseeded).
#include "coco_json.h"
#include "subcommands.h"

namespace sparser::prep {

Subcommand nwpu_subcommand() {
  return {"nwpu", "NWPU VHR-10 (COCO-format instance JSON) → seeded train/val shards",
          [](po::options_description& o) {
            o.add_options()("images", po::value<std::string>()->required(), "VHR-10_dataset_coco's 'positive image set' directory")(
                "annotations", po::value<std::string>()->required(), "VHR-10_dataset_coco's annotations.json")(
                "train-fraction", po::value<double>()->default_value(0.7, "0.7"), "share of images in train");
          },
          [](const po::variables_map& vm, const CommonOptions& common) {
            auto index = load_coco_index(vm["annotations"].as<std::string>());
            const auto in_train = seeded_split(index->images.size(), vm["train-fraction"].as<double>(), common.seed,
                                               "--train-fraction");
            Plan plan{"nwpu", {"train", "val"}, index->class_names_json, {}};
            for (size_t i = 0; i < index->images.size(); ++i)
              plan.jobs.push_back(coco_image_job(index, i, vm["images"].as<std::string>(),
                                                 in_train[i] ? "train" : "val", common.keep_crowd));
            return plan;
          }};
}

}  // namespace sparser::prep

// ssdd: SAR Ship Detection Dataset, COCO-format polygon annotations with its own
// train/test JSON files.
#include "coco_json.h"
#include "subcommands.h"

namespace sparser::prep {

Subcommand ssdd_subcommand() {
  return {"ssdd", "SSDD SAR ships (COCO-format polygons, train/test JSON) → train/test shards",
          [](po::options_description& o) {
            o.add_options()("images", po::value<std::string>()->required(), "image directory")(
                "train-annotations", po::value<std::string>()->required(), "COCO-format JSON of the train split")(
                "test-annotations", po::value<std::string>()->required(), "COCO-format JSON of the test split");
          },
          [](const po::variables_map& vm, const CommonOptions& common) {
            Plan plan{"ssdd", {"train", "test"}, "{}", {}};
            for (const std::string split : {"train", "test"}) {
              auto index = load_coco_index(vm[split + "-annotations"].as<std::string>());
              plan.class_names_json = index->class_names_json;
              for (size_t i = 0; i < index->images.size(); ++i)
                plan.jobs.push_back(coco_image_job(index, i, vm["images"].as<std::string>(), split, common.keep_crowd));
            }
            return plan;
          }};
}

}  // namespace sparser::prep

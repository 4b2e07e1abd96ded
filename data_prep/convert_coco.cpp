// coco: COCO 2017 as distributed: <root>/annotations/instances_{train,val}2017.json and
// the images in <root>/{train,val}2017/.
#include <filesystem>

#include "coco_json.h"
#include "subcommands.h"

namespace sparser::prep {

Subcommand coco_subcommand() {
  return {"coco", "COCO instances JSON (polygons, RLE, crowd) → train/val shards",
          [](po::options_description& o) {
            o.add_options()("root", po::value<std::string>()->required(), "COCO root (annotations/, train2017/, val2017/)")(
                "year", po::value<std::string>()->default_value("2017"), "release year in the file names");
          },
          [](const po::variables_map& vm, const CommonOptions& common) {
            namespace fs = std::filesystem;
            const fs::path root = vm["root"].as<std::string>();
            const std::string year = vm["year"].as<std::string>();
            Plan plan{"coco", {"train", "val"}, "{}", {}};
            for (const std::string split : {"train", "val"})
              add_coco_split(plan, (root / "annotations" / ("instances_" + split + year + ".json")).string(),
                             (root / (split + year)).string(), split, common.keep_crowd);
            return plan;
          }};
}

}  // namespace sparser::prep

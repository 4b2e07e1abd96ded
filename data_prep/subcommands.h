#pragma once
// One subcommand per source format; each declares its own options and turns them into a
// Plan (conversion.h). main.cpp adds the common options and runs the plan.
#include <boost/program_options.hpp>

#include <functional>
#include <string>
#include <vector>

#include "conversion.h"

namespace sparser::prep {

namespace po = boost::program_options;

struct Subcommand {
  std::string name;
  std::string summary;
  std::function<void(po::options_description&)> add_options;
  std::function<Plan(const po::variables_map&, const CommonOptions&)> plan;
};

Subcommand coco_subcommand();
Subcommand voc_subcommand();
Subcommand nwpu_subcommand();
Subcommand whu_subcommand();
Subcommand abdomenct_subcommand();
Subcommand ssdd_subcommand();
Subcommand folder_subcommand();
Subcommand synthetic_subcommand();

}  // namespace sparser::prep

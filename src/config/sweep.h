#pragma once
// The runs of a config: its [sweep] table (dotted keys → lists of values; the key
// `method` may list whole method tables, so methods with different settings share a
// grid) crossed with run.seeds. Each run gets a stable, readable id such as
// parser-layers=conv-train=coefficients-seed=1.
#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include <string>
#include <vector>

#include "config/run_config.h"

namespace sparser::config {

struct SweepRun {
  std::string id;
  int64_t seed = 1;
  RunConfig config;      // validated; run.seeds = {seed}
  nlohmann::json group;  // the identifying values except the seed
};

// Expands and validates every run; an invalid combination is an error naming its id.
std::vector<SweepRun> expand_runs(const toml::table& root, const std::string& source);

}  // namespace sparser::config

#pragma once
// The runs of a config: its [sweep] table (dotted keys → lists of values; the key
// `method` may list whole method tables, so methods with different settings share a
// grid) crossed with run.seeds. Each run gets a stable, readable id such as
// parser-layers=conv-train=coefficients-seed=1, safe as a directory name and unique in
// the grid (docs/config.md, "Run ids").
#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include <cstdint>
#include <string>
#include <vector>

#include "config/run_config.h"

namespace sparser::config {

struct SweepRun {
  std::string id;
  int64_t seed = 1;
  std::vector<int64_t> all_seeds;  // every seed of run.seeds: the seeds this run's group should have
  RunConfig config;                // validated; run.seeds = {seed}
  nlohmann::json group;            // the identifying values except the seed
};

// Expands and validates every run; an invalid combination is an error naming its id.
// Also errors: a sweep key through a value that is not a table, two runs with the same
// id, and a --set override (apply_overrides) of a key the sweep sets, which every run
// would replace.
std::vector<SweepRun> expand_runs(const toml::table& root, const std::string& source);

}  // namespace sparser::config

#pragma once
// The [model] table: a preset (vit_b, vit_l, vit_h) or `custom` with every dimension,
// plus the checkpoint to start from.
#include <string>

#include "config/toml_section.h"
#include "model/sam_config.h"

namespace sparser::config {

struct ModelSection {
  model::SamConfig sam;
  std::string checkpoint;      // empty: random initialisation
  std::string checkpoint_key;  // the state dict's key in a nested checkpoint; empty: found automatically
};

ModelSection parse_model_section(const TomlSection& table, Checks checks = Checks::kWholeRun);
// Reads the [model] table of a config file (e.g. a fixture's config.toml), which must have one.
ModelSection load_model_section(const std::string& config_path);

}  // namespace sparser::config

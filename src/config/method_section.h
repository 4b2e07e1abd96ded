#pragma once
// Parses the [method] table. Keys that belong to another method are errors, so a
// typo or a leftover key never silently changes an experiment.
#include "config/toml_section.h"
#include "methods/method_config.h"

namespace sparser::config {

methods::MethodConfig parse_method_section(const TomlSection& table);

}  // namespace sparser::config

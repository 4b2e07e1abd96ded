#pragma once
// The [method] table, both ways. Keys that belong to another method are errors, so a
// typo or a leftover key never silently changes an experiment.
#include "config/toml_section.h"
#include "methods/method_config.h"

namespace sparser::config {

methods::MethodConfig parse_method_section(const TomlSection& table);
// A method's settings as a [method] table: name, train_prompt_encoder and every key of
// that method; parse_method_section gives `config` back. The one rendering of a method
// (the resolved config.toml, the method in summary.json).
toml::table method_table(const methods::MethodConfig& config);

}  // namespace sparser::config

#pragma once
// Builds the model a run or tool needs: the architecture from [model], the base
// checkpoint it names (strictly checked), then the fine-tuning method from [method].
#include <optional>

#include "config/model_section.h"
#include "methods/layer_selection.h"
#include "methods/method_config.h"
#include "model/sam.h"

namespace sparser::train {

struct ModelSetup {
  model::Sam sam{nullptr};
  std::vector<methods::NamedLayer> hooked_layers;
};

ModelSetup build_model(const config::ModelSection& model_section,
                       const std::optional<methods::MethodConfig>& method = std::nullopt);

}  // namespace sparser::train

#include "train/model_setup.h"

#include "checkpoint/state_dict.h"
#include "methods/apply_method.h"

namespace sparser::train {

ModelSetup build_model(const config::ModelSection& model_section, const std::optional<methods::MethodConfig>& method) {
  ModelSetup setup;
  setup.sam = model::Sam(model_section.sam);
  if (!model_section.checkpoint.empty())
    checkpoint::load_state_dict(*setup.sam, checkpoint::read_state_dict(model_section.checkpoint, model_section.checkpoint_key),
                                /*strict=*/true, model_section.checkpoint);
  if (method) setup.hooked_layers = methods::apply_method(*setup.sam, *method);
  return setup;
}

}  // namespace sparser::train

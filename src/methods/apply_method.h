#pragma once
// Turns a pretrained SAM into the model a fine-tuning method trains: every tensor is
// frozen, the method's hooks are attached to the encoder, and the trainable set is
// marked (the mask decoder in every method but zero_shot).
#include "methods/layer_selection.h"
#include "methods/method_config.h"
#include "model/sam.h"

namespace sparser::methods {

// Call after loading the base checkpoint (SVD bases are computed from its weights).
// Returns the layers that received a hook.
std::vector<NamedLayer> apply_method(model::SamImpl& sam, const MethodConfig& config);

}  // namespace sparser::methods

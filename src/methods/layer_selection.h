#pragma once
// Finds the hookable Linear/Conv2d layers of a model by dotted module name.
#include <torch/torch.h>

#include <string>
#include <vector>

#include "methods/layer_pattern.h"
#include "model/hooked_layers.h"

namespace sparser::methods {

struct NamedLayer {
  std::string name;  // e.g. "image_encoder.blocks.3.attn.qkv"
  std::shared_ptr<model::HookedLayer> layer;
};

// Every hookable layer whose name matches one of `patterns`, in model order. Throws
// naming each pattern that matched no layer (a typo must not train nothing).
std::vector<NamedLayer> select_layers(torch::nn::Module& model, const std::vector<std::string>& patterns);

}  // namespace sparser::methods

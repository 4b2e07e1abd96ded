#pragma once
// What a method trains: the tensors, their exact counts per module, the delta a run
// saves (only what trained) and the merge back into an official state dict.
#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "model/sam.h"

namespace sparser::methods {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Parameters with requires_grad, by dotted name, in model order.
NamedTensors trainable_parameters(const torch::nn::Module& module);

struct TrainableCount {
  int64_t total = 0;
  std::map<std::string, int64_t> by_module;  // image_encoder / prompt_encoder / mask_decoder
  std::map<std::string, int64_t> by_kind;    // decoder, parser, lora, adapter, fact, …
};
TrainableCount count_trainable(const torch::nn::Module& module);
// A readable table of the counts (also in K = 1024, as the paper reports them).
std::string format_trainable(const TrainableCount& count);

// The official state dict of `sam` with every hook folded into its layer's weight
// (PARSER, LoRA, FacT); throws for hooks that cannot be folded (adapters) unless
// keep_unmergeable, in which case their tensors are kept under their own names.
NamedTensors merged_state_dict(model::SamImpl& sam, bool keep_unmergeable = false);

// Copies a saved delta (the tensors a run trained) into `sam`: its keys must be exactly
// the model's trainable tensors, with their shapes; errors list every offending key.
void load_delta(model::SamImpl& sam, const NamedTensors& delta, const std::string& source);

}  // namespace sparser::methods

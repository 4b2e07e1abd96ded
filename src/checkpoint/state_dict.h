#pragma once
// PyTorch checkpoints (torch.save of a state_dict, zip format) read and written without
// Python, and copied into or out of LibTorch modules under the official key names.
#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "checkpoint/zip_archive.h"

namespace sparser::checkpoint {

using StateDict = std::vector<std::pair<std::string, torch::Tensor>>;  // keeps file order

// Reads a state dict; if the pickle's top level is a dict whose tensors sit under one
// key (e.g. {"model": {...}} or {"state_dict": {...}} as common fine-tuning repos save),
// `nested_key` selects it; "" = auto-detect (top-level tensors, else the single
// nested dict holding tensors, else error listing the top-level keys). Keys that all
// start with "module." (a DistributedDataParallel model) lose that prefix.
StateDict read_state_dict(const std::string& path, const std::string& nested_key = "");

// Writes `state` as torch.save(OrderedDict) would (CPU tensors, one storage each);
// atomic: temp file + rename.
void write_state_dict(const std::string& path, const StateDict& state);

// Parameters and buffers of a module under their dotted names, in registration order
// (PyTorch's state_dict order: per module its parameters, then its buffers, then its children).
StateDict module_state(const torch::nn::Module& module);

struct LoadReport {
  std::vector<std::string> missing, unexpected, mismatched;
};

// Copies `state` into `module`'s parameters/buffers (no autograd), converting dtypes.
// strict: every key of the module must be present, no extra keys, identical shapes; on
// violation one CheckpointError (naming `source`) lists every missing key, unexpected key
// and shape mismatch by name, and nothing is copied. Non-strict: loads the intersection of
// matching shapes and returns what did not match.
LoadReport load_state_dict(torch::nn::Module& module, const StateDict& state, bool strict = true,
                           const std::string& source = "");

// "[256, 768, 1, 1]", as PyTorch prints sizes ("undefined" for an undefined tensor).
std::string shape_string(const torch::Tensor& tensor);

}  // namespace sparser::checkpoint

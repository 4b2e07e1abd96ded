#pragma once
// Writes the data.pkl of a torch.save(state_dict) file: what Python's torch.load reads
// back as an OrderedDict of tensors.
#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

namespace sparser::checkpoint {

// Pickles (protocol 2) an OrderedDict of `tensors` in order. Tensor i is described as the
// whole of storage "i" (the archive entry data/<i>, which the caller writes with the
// tensor's bytes), so every tensor must be contiguous; storages are tagged location 'cpu'.
// Throws CheckpointError, naming `source`, for a dtype torch.save has no storage class for.
std::string pickle_state_dict(const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                              const std::string& source);

}  // namespace sparser::checkpoint

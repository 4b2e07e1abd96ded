#include "methods/qkv_slices.h"

#include <stdexcept>

namespace sparser::methods {

int64_t qkv_slice_index(const std::string& target) {
  if (target == "q") return 0;
  if (target == "k") return 1;
  if (target == "v") return 2;
  throw std::invalid_argument("qkv target must be q, k or v (got '" + target + "')");
}

torch::Tensor add_to_qkv_output(const torch::Tensor& output, const std::vector<std::string>& targets,
                                const std::vector<torch::Tensor>& updates) {
  auto slices = output.split(output.size(-1) / 3, -1);
  for (size_t i = 0; i < targets.size(); ++i) {
    const auto s = qkv_slice_index(targets[i]);
    slices[s] = slices[s] + updates[i];
  }
  return torch::cat(slices, -1);
}

torch::Tensor add_to_qkv_weight(const torch::Tensor& weight, const std::vector<std::string>& targets,
                                const std::vector<torch::Tensor>& deltas) {
  auto merged = weight.clone();
  const auto rows = weight.size(0) / 3;
  for (size_t i = 0; i < targets.size(); ++i) merged.narrow(0, qkv_slice_index(targets[i]) * rows, rows).add_(deltas[i]);
  return merged;
}

}  // namespace sparser::methods

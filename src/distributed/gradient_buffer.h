#pragma once
// All trainable gradients in one contiguous buffer, so a step's gradient exchange is a
// single all-reduce. Each parameter's .grad() is a view into the buffer; autograd adds
// into a defined gradient in place (AccumulateGrad: `grad += new_grad` outside
// double-backward), so backward() writes straight into it.
//
// Keep the views: zero with zero_() (not optimizer.zero_grad(), which in newer LibTorch
// sets gradients to undefined), and do not call backward(create_graph=true) (autograd
// then replaces the gradient tensor). flat() checks this and names the parameter.
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "distributed/communicator.h"

namespace sparser::distributed {

class FlatGradients {
 public:
  using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

  // `parameters`: leaf tensors requiring grad, all of one dtype and device. A gradient
  // they already hold is copied into the buffer.
  explicit FlatGradients(const NamedTensors& parameters);

  // Zeroes the gradients (in place; the views stay).
  void zero_();
  // The buffer, for the all-reduce and gradient clipping. Throws if some parameter's
  // gradient is no longer a view into it.
  const torch::Tensor& flat() const;
  // A hash of the names, shapes and dtypes, in order: equal across processes exactly
  // when the layouts are, for Communicator::check_consistent.
  uint64_t layout_hash() const;
  // Gives every rank rank 0's parameter values (collective), e.g. after initialisation.
  void broadcast_parameters(Communicator& comm);
  int64_t bytes() const;

 private:
  NamedTensors parameters_;
  torch::Tensor flat_;
  std::vector<int64_t> offsets_;  // of each parameter in flat_, in elements
};

}  // namespace sparser::distributed

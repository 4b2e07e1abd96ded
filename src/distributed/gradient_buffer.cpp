#include "distributed/gradient_buffer.h"

#include <stdexcept>

namespace sparser::distributed {
namespace {

// FNV-1a over explicitly serialised values: the same on every platform and process,
// unlike std::hash.
class LayoutHasher {
 public:
  void add(uint64_t value) {
    for (int byte = 0; byte < 8; ++byte) add_byte(static_cast<unsigned char>(value >> (8 * byte)));
  }
  void add(const std::string& text) {
    add(static_cast<uint64_t>(text.size()));  // length first, so ("ab","c") != ("a","bc")
    for (char c : text) add_byte(static_cast<unsigned char>(c));
  }
  uint64_t value() const { return hash_; }

 private:
  void add_byte(unsigned char byte) {
    hash_ ^= byte;
    hash_ *= 0x100000001b3ULL;
  }
  uint64_t hash_ = 0xcbf29ce484222325ULL;
};

}  // namespace

FlatGradients::FlatGradients(const NamedTensors& parameters) : parameters_(parameters) {
  int64_t total = 0;
  for (const auto& [name, parameter] : parameters_) {
    if (!parameter.defined()) throw std::invalid_argument("FlatGradients: parameter '" + name + "' is undefined");
    if (!parameter.is_leaf() || !parameter.requires_grad())
      throw std::invalid_argument("FlatGradients: parameter '" + name +
                                  "' is not a leaf tensor that requires grad, so autograd would not fill its .grad()");
    const auto& [first_name, first] = parameters_.front();
    if (parameter.scalar_type() != first.scalar_type() || parameter.device() != first.device())
      throw std::invalid_argument("FlatGradients: parameter '" + name + "' is " + c10::toString(parameter.scalar_type()) +
                                  " on " + parameter.device().str() + " but '" + first_name + "' is " +
                                  c10::toString(first.scalar_type()) + " on " + first.device().str() +
                                  "; one buffer holds one dtype on one device");
    offsets_.push_back(total);
    total += parameter.numel();
  }
  const auto options = parameters_.empty() ? torch::TensorOptions(torch::kFloat32) : parameters_.front().second.options();
  flat_ = torch::zeros({total}, options.requires_grad(false));

  const torch::NoGradGuard no_grad;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const auto& parameter = parameters_[i].second;
    // detach(): the gradient must not be an autograd view of flat_, because
    // Optimizer::zero_grad() calls detach_() on it, which autograd views refuse.
    auto grad = flat_.narrow(0, offsets_[i], parameter.numel()).view(parameter.sizes()).detach();
    if (parameter.grad().defined()) grad.copy_(parameter.grad());
    parameter.mutable_grad() = grad;
  }
}

void FlatGradients::zero_() { flat_.zero_(); }

const torch::Tensor& FlatGradients::flat() const {
  for (const auto& [name, parameter] : parameters_)
    if (!parameter.grad().defined() || !parameter.grad().is_alias_of(flat_))
      throw std::logic_error("FlatGradients: the gradient of '" + name +
                             "' is no longer a view into the flat buffer (was it set to undefined by zero_grad, or "
                             "replaced by backward(create_graph=true)?); zero gradients with FlatGradients::zero_()");
  return flat_;
}

uint64_t FlatGradients::layout_hash() const {
  LayoutHasher hasher;
  hasher.add(static_cast<uint64_t>(parameters_.size()));
  for (const auto& [name, parameter] : parameters_) {
    hasher.add(name);
    hasher.add(static_cast<uint64_t>(parameter.dim()));
    for (const int64_t size : parameter.sizes()) hasher.add(static_cast<uint64_t>(size));
    hasher.add(std::string(c10::toString(parameter.scalar_type())));
  }
  return hasher.value();
}

void FlatGradients::broadcast_parameters(Communicator& comm) {
  const torch::NoGradGuard no_grad;
  auto values = torch::empty_like(flat_);
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const auto& parameter = parameters_[i].second;
    values.narrow(0, offsets_[i], parameter.numel()).view(parameter.sizes()).copy_(parameter);
  }
  comm.broadcast_(values, /*root=*/0);
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const auto& parameter = parameters_[i].second;
    parameter.copy_(values.narrow(0, offsets_[i], parameter.numel()).view(parameter.sizes()));
  }
}

int64_t FlatGradients::bytes() const { return flat_.numel() * static_cast<int64_t>(flat_.element_size()); }

}  // namespace sparser::distributed

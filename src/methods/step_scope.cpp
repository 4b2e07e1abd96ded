#include "methods/step_scope.h"

#include "model/hooked_layers.h"

namespace sparser::methods {

StepScope::StepScope(torch::nn::Module& model) {
  for (const auto& module : model.modules(/*include_self=*/true))
    if (auto layer = std::dynamic_pointer_cast<model::HookedLayer>(module); layer && layer->hook())
      hooks_.push_back(layer->hook());
  for (auto& hook : hooks_) hook->begin_step();
}

StepScope::~StepScope() {
  if (!open_) return;
  for (auto& hook : hooks_) hook->end_step(/*pass_gradients=*/false);
}

void StepScope::finish_backward() {
  TORCH_CHECK(open_, "StepScope::finish_backward called twice");
  open_ = false;
  for (auto& hook : hooks_) hook->end_step(/*pass_gradients=*/true);
}

}  // namespace sparser::methods

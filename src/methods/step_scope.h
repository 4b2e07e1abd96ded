#pragma once
// One optimiser step's worth of forward and backward passes (one or several images):
// hooks that rebuild a weight (SAM-PARSER's W' = (U·σ)·Vᵀ) build it once for the whole
// step instead of once per image, and finish_backward() sends the gradient summed on it
// back to σ, U, V in one pass. Use it around every training step:
//
//   methods::StepScope step(model);
//   for (image : step_images) loss(image).backward();
//   step.finish_backward();   // now σ.grad etc. hold the step's gradients
//   optimizer.step();
#include <torch/torch.h>

#include <memory>
#include <vector>

#include "model/layer_hook.h"

namespace sparser::methods {

class StepScope {
 public:
  explicit StepScope(torch::nn::Module& model);
  // Ends the step without passing gradients on if finish_backward() was not called
  // (the step failed).
  ~StepScope();
  StepScope(const StepScope&) = delete;
  StepScope& operator=(const StepScope&) = delete;

  // After the step's last backward(): completes the hooks' gradients and ends the step.
  void finish_backward();

 private:
  std::vector<std::shared_ptr<model::LayerHook>> hooks_;
  bool open_ = true;
};

}  // namespace sparser::methods

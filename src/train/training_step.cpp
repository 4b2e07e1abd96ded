#include "train/training_step.h"

#include <cmath>

#include "methods/step_scope.h"
#include "train/evaluate.h"
#include "train/loss.h"

namespace sparser::train {

TrainingStep::TrainingStep(model::SamImpl& sam, distributed::FlatGradients& gradients,
                           torch::optim::Optimizer& optimizer, distributed::Communicator& comm,
                           const config::TrainSection& train, torch::Device device, TrunkCache* trunk_cache)
    : sam_(sam),
      gradients_(gradients),
      optimizer_(optimizer),
      comm_(comm),
      train_(train),
      device_(device),
      trunk_cache_(trunk_cache) {}

double TrainingStep::run(const std::vector<TrainingExample>& examples, double lr, const std::string& where) {
  const LossWeights weights{train_.loss_bce, train_.loss_dice, train_.loss_focal};
  gradients_.zero_();
  double mean_loss = 0;
  bool finite = true;
  {
    methods::StepScope step(sam_);  // PARSER builds W' once for all images of the step
    for (const auto& ex : examples) {
      const auto logits =
          predict_low_res(sam_, ex.image, ex.boxes, ex.index, device_, trunk_cache_, train_.precision == "bf16");
      const auto loss = segmentation_loss(logits, ex.low_res_targets.to(device_), weights).total;
      const double value = loss.item<double>();
      mean_loss += value / static_cast<double>(examples.size());
      if (!std::isfinite(value)) {
        finite = false;
        break;
      }
      loss.backward();
    }
    if (finite) step.finish_backward();
  }
  if (comm_.any(!finite)) {
    std::string samples;
    for (const auto& ex : examples) samples += (samples.empty() ? "" : ", ") + std::to_string(ex.index);
    throw std::runtime_error("non-finite loss at " + where +
                             (finite ? std::string(" on another rank") : " on this rank, samples " + samples) +
                             "; the last good checkpoint is kept");
  }
  if (examples.size() > 1) gradients_.flat().div_(static_cast<double>(examples.size()));
  comm_.allreduce_mean_(gradients_.flat());
  if (train_.grad_clip > 0) {
    const auto norm = gradients_.flat().norm().item<double>();
    if (norm > train_.grad_clip) gradients_.flat().mul_(train_.grad_clip / norm);
  }
  for (auto& group : optimizer_.param_groups()) group.options().set_lr(lr);
  optimizer_.step();
  return mean_loss;
}

}  // namespace sparser::train

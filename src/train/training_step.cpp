#include "train/training_step.h"

#include <torch/csrc/autograd/functions/accumulate_grad.h>

#include <algorithm>
#include <cmath>
#include <unordered_set>
#include <utility>

#include "methods/step_scope.h"
#include "train/evaluate.h"
#include "train/precision.h"

namespace sparser::train {

double backward_image_loss(model::SamImpl& sam, const torch::Tensor& embedding, const torch::Tensor& boxes,
                           const torch::Tensor& targets, const LossWeights& weights, int64_t prompts_per_pass,
                           torch::Device device) {
  const bool through_encoder = embedding.requires_grad();
  // The passes' gradients collect on this leaf; one backward through the encoder follows.
  const auto leaf = through_encoder ? embedding.detach().requires_grad_(true) : embedding;
  const auto n = boxes.size(0);
  const auto per_pass = prompts_per_pass > 0 ? std::min(prompts_per_pass, n) : n;
  double total = 0;
  for (int64_t first = 0; first < n; first += per_pass) {
    const auto count = std::min(per_pass, n - first);
    const auto logits = decode_low_res(sam, leaf, boxes.narrow(0, first, count), device);
    const auto share = static_cast<double>(count) / static_cast<double>(n);
    const auto loss =
        segmentation_loss(logits, targets.narrow(0, first, count).to(device), weights, n).total * share;
    const double value = loss.item<double>();
    total += value;
    if (!std::isfinite(value)) return value;
    loss.backward();
  }
  if (through_encoder) embedding.backward(leaf.grad());
  return total;
}

methods::NamedTensors tensors_the_loss_does_not_reach(model::SamImpl& sam, torch::Device device) {
  const auto& c = sam.config();
  const torch::AutoGradMode with_graph(true);
  const auto embedding = torch::zeros({1, c.prompt_embed_dim, c.embedding_size(), c.embedding_size()},
                                      torch::TensorOptions(device));
  model::Prompts prompts;
  const float half = static_cast<float>(c.image_size) / 2;
  prompts.boxes = torch::tensor({{0.f, 0.f, half, half}}, torch::TensorOptions(device));
  // The single mask and the three of the multi-mask output: together the official
  // decoder's graph, which computes all four masks and slices.
  const auto probe = sam.decode(embedding, prompts, /*multimask_output=*/false).low_res_logits.sum() +
                     sam.decode(embedding, prompts, /*multimask_output=*/true).low_res_logits.sum();
  std::unordered_set<const c10::TensorImpl*> reached;
  std::unordered_set<const torch::autograd::Node*> seen;
  std::vector<torch::autograd::Node*> pending{probe.grad_fn().get()};
  while (!pending.empty()) {
    auto* node = pending.back();
    pending.pop_back();
    if (!node || !seen.insert(node).second) continue;
    if (const auto* accumulate = dynamic_cast<const torch::autograd::AccumulateGrad*>(node))
      reached.insert(accumulate->variable.unsafeGetTensorImpl());
    for (const auto& edge : node->next_edges()) pending.push_back(edge.function.get());
  }
  methods::NamedTensors unreached;
  for (const auto& item : sam.named_parameters(/*recurse=*/true)) {
    const auto& name = item.key();
    const bool after_encoder = name.rfind("mask_decoder.", 0) == 0 || name.rfind("prompt_encoder.", 0) == 0;
    if (after_encoder && item.value().requires_grad() && !reached.count(item.value().unsafeGetTensorImpl()))
      unreached.emplace_back(name, item.value());
  }
  return unreached;
}

TrainingStep::TrainingStep(model::SamImpl& sam, distributed::FlatGradients& gradients,
                           torch::optim::Optimizer& optimizer, distributed::Communicator& comm,
                           const config::TrainSection& train, torch::Device device, TrunkCache* trunk_cache)
    : sam_(sam),
      gradients_(gradients),
      optimizer_(optimizer),
      comm_(comm),
      train_(train),
      device_(device),
      trunk_cache_(trunk_cache),
      unreached_(tensors_the_loss_does_not_reach(sam, device)) {}

StepOutcome TrainingStep::run(const std::vector<TrainingExample>& examples, double lr, const std::string& where) {
  const LossWeights weights{train_.loss_bce, train_.loss_dice, train_.loss_focal};
  gradients_.zero_();
  double loss_sum = 0;
  {
    methods::StepScope step(sam_);  // PARSER builds W' once for all images of the step
    const bool bf16 = train_.precision == "bf16";
    // Each image's gradient is completed on its own and then added to the earlier images'
    // sum, as the all-reduce adds the ranks' gradients: one rank with N images adds the
    // same numbers as N ranks with one, also when an image takes several decoder passes.
    torch::Tensor earlier_images;
    for (const auto& ex : examples) {
      if (&ex != &examples.front()) {
        if (earlier_images.defined()) earlier_images.add_(gradients_.flat());
        else earlier_images = gradients_.flat().clone();
        gradients_.zero_();
      }
      torch::manual_seed(ex.noise_seed);
      torch::Tensor embedding;
      {
        AutocastScope autocast(device_, bf16);
        embedding = encode_image(sam_, ex.image, ex.index, device_, trunk_cache_);
      }
      loss_sum += backward_image_loss(sam_, embedding, ex.boxes, ex.low_res_targets, weights,
                                      train_.prompts_per_pass, device_);
      if (!std::isfinite(loss_sum)) break;
    }
    if (std::isfinite(loss_sum)) step.finish_backward();
    if (earlier_images.defined()) gradients_.flat().add_(earlier_images);
  }
  // One exchange (an allgather) gives every rank each rank's image count and loss sum.
  const auto by_rank = comm_.allgather_doubles({static_cast<double>(examples.size()), loss_sum});
  StepOutcome outcome;
  double total_loss = 0;
  std::string non_finite_ranks;
  for (size_t r = 0; r < by_rank.size() / 2; ++r) {
    outcome.images += static_cast<int64_t>(by_rank[2 * r]);
    total_loss += by_rank[2 * r + 1];
    if (!std::isfinite(by_rank[2 * r + 1]))
      non_finite_ranks += (non_finite_ranks.empty() ? "" : ", ") + std::to_string(r);
  }
  if (!non_finite_ranks.empty()) {
    std::string samples;
    for (const auto& ex : examples) samples += (samples.empty() ? "" : ", ") + std::to_string(ex.index);
    throw std::runtime_error("non-finite loss at " + where +
                             (std::isfinite(loss_sum) ? " on rank " + non_finite_ranks
                                                      : " on this rank, samples " + samples) +
                             "; the last good checkpoint is kept");
  }
  if (outcome.images == 0) return outcome;
  outcome.loss = total_loss / static_cast<double>(outcome.images);
  comm_.allreduce_sum_(gradients_.flat());
  gradients_.flat().div_(static_cast<double>(outcome.images));
  if (train_.grad_clip > 0) {
    const auto norm = gradients_.flat().norm().item<double>();
    if (norm > train_.grad_clip) gradients_.flat().mul_(train_.grad_clip / norm);
  }
  for (auto& group : optimizer_.param_groups()) group.options().set_lr(lr);
  // Without a gradient, Adam(W) skips a tensor, as PyTorch's does one the loss leaves at None.
  std::vector<torch::Tensor> hidden;
  for (auto& [name, tensor] : unreached_) hidden.push_back(std::exchange(tensor.mutable_grad(), torch::Tensor()));
  optimizer_.step();
  for (size_t i = 0; i < hidden.size(); ++i) unreached_[i].second.mutable_grad() = hidden[i];
  return outcome;
}

}  // namespace sparser::train

#include "train/loss.h"

namespace sparser::train {

LossTerms segmentation_loss(const torch::Tensor& logits, const torch::Tensor& targets, const LossWeights& w,
                            int64_t image_instances) {
  TORCH_CHECK(logits.sizes() == targets.sizes(), "loss: logits ", logits.sizes(), " vs targets ", targets.sizes());
  const auto target = targets.to(logits.dtype());
  LossTerms t;
  // Mean over every pixel of every instance.
  t.bce = torch::binary_cross_entropy_with_logits(logits, target);
  // Soft Dice per instance, averaged over instances.
  const auto p = torch::sigmoid(logits).flatten(1);
  const auto g = target.flatten(1);
  const auto dice_score = (2 * (p * g).sum(1) + w.dice_smooth) / (p.sum(1) + g.sum(1) + w.dice_smooth);
  t.dice = (1 - dice_score).mean();
  t.total = w.bce * t.bce + w.dice * t.dice;
  if ((image_instances > 0 ? image_instances : logits.size(0)) > 1) {
    // Sigmoid focal loss (Lin et al. 2017), mean over pixels.
    const auto ce = torch::binary_cross_entropy_with_logits(logits, target, {}, {}, at::Reduction::None);
    const auto p_t = torch::sigmoid(logits) * target + (1 - torch::sigmoid(logits)) * (1 - target);
    const auto alpha_t = w.focal_alpha * target + (1 - w.focal_alpha) * (1 - target);
    t.focal = (alpha_t * (1 - p_t).pow(w.focal_gamma) * ce).mean();
    t.total = t.total + w.focal * t.focal;
  } else {
    t.focal = torch::zeros({}, logits.options());
  }
  return t;
}

}  // namespace sparser::train

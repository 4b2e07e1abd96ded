#pragma once
// The segmentation loss of the paper (eq. 5): BCE + Dice, plus a focal term for
// multi-instance scenes. Exact formulas in docs/training.md.
#include <torch/torch.h>

namespace sparser::train {

struct LossWeights {
  double bce = 1.0;
  double dice = 1.0;
  double focal = 1.0;  // used only for images with more than one instance
  double focal_alpha = 0.25;
  double focal_gamma = 2.0;
  double dice_smooth = 1.0;
};

struct LossTerms {
  torch::Tensor total, bce, dice, focal;  // scalars; focal is 0 for single-instance images
};

// logits, targets: N×1×h×w for N instances of one image (targets in {0, 1}). Every term
// is a mean over the instances, so the loss of a subset weighted by its share of the
// image's instances adds up to the image's loss; `image_instances` (N when 0) is how many
// the whole image has, which decides whether the focal term applies.
LossTerms segmentation_loss(const torch::Tensor& logits, const torch::Tensor& targets, const LossWeights& weights,
                            int64_t image_instances = 0);

}  // namespace sparser::train

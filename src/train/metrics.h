#pragma once
// Per-instance segmentation metrics of a thresholded mask against its ground truth,
// at the original image resolution. Dataset figures are means over all instances.
#include <torch/torch.h>

#include <vector>

namespace sparser::train {

struct InstanceScores {
  double iou;
  double dice;  // = F1 of the pixel classification (2TP / (2TP + FP + FN))
};

// predicted, truth: N×H×W boolean masks. An instance whose prediction and truth are
// both empty scores 1 (nothing to find, nothing found).
std::vector<InstanceScores> score_instances(const torch::Tensor& predicted, const torch::Tensor& truth);

}  // namespace sparser::train

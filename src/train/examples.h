#pragma once
// Samples from the data pipeline as tensors for the model: a training example (image
// in the model frame, jittered boxes, ground truth at the decoder's low resolution)
// and an evaluation example (unjittered boxes, ground truth at the original size).
#include <torch/torch.h>

#include "data/sample.h"
#include "model/resize_longest_side.h"
#include "model/sam.h"

namespace sparser::train {

struct TrainingExample {
  int64_t index = -1;              // global sample index
  torch::Tensor image;             // 1×3×h×w float RGB in [0, 255], model frame, unpadded
  torch::Tensor boxes;             // N×4 (x0, y0, x1, y1), model frame
  torch::Tensor low_res_targets;   // N×1×L×L in {0, 1}, L = 4·(image_size / patch_size)
  // Seeds LibTorch's generator before the image's forward pass (FacT's dropout): drawn from
  // the run's seed, the epoch and the sample, so that the noise depends neither on the
  // number of ranks nor on where a resumed run restarted.
  uint64_t noise_seed = 0;
};

struct EvalExample {
  int64_t index = -1;
  torch::Tensor image;             // 1×3×h×w, model frame
  torch::Tensor boxes;             // N×4, model frame
  torch::Tensor masks;             // N×H×W bool, original size
  std::vector<int32_t> class_ids;  // N
  model::ImageSize input_size, original_size;
};

// `sample` comes from data::prepare_sample (already resized to the model frame).
TrainingExample to_training_example(const data::Sample& sample, const model::SamConfig& config);
// `sample` is as stored (original size); resized here, boxes mapped without jitter.
EvalExample to_eval_example(const data::Sample& sample, const model::SamConfig& config);

}  // namespace sparser::train

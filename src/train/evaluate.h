#pragma once
// Evaluation sharded over ranks: each rank scores the instances of its samples
// (indices rank, rank + R, …, no padding), the per-instance scores are gathered, and
// the means are exact dataset means over all instances.
#include <functional>
#include <map>
#include <optional>

#include "data/shard_dataset.h"
#include "distributed/communicator.h"
#include "model/sam.h"
#include "train/trunk_cache.h"

namespace sparser::train {

struct EvalResult {
  int64_t instances = 0;
  double miou = 0;  // mean IoU over instances
  double f1 = 0;    // mean F1 (pixel F1 = Dice) over instances
  double dsc = 0;   // mean Dice over instances (= f1; medical papers call it DSC)
  std::map<int32_t, double> per_class_dsc;  // mean Dice per class id
};

// Box prompts are the ground-truth boxes (no jitter); one mask per box (single-mask
// output), thresholded at 0 after post-processing to the original image size.
// With `trunk_cache` (frozen trunk only; keyed for this dataset's eval pre-processing)
// trunk outputs are taken from / added to it; the neck and decoder always run.
// `bf16`: the image encoder under bfloat16 autocast (train.precision). `stop`, if given, is
// asked (collectively: every rank calls it equally often) before each round of samples;
// when it says true the evaluation ends early and returns nothing.
std::optional<EvalResult> evaluate(model::SamImpl& sam, const data::ShardDataset& dataset,
                                   distributed::Communicator& comm, int64_t rank, int64_t world_size,
                                   torch::Device device, TrunkCache* trunk_cache = nullptr, bool bf16 = false,
                                   const std::function<bool()>& stop = {});

// The image embedding of a preprocessed-to-be image (1×3×h×w, model frame), through
// `trunk_cache` when given: the cached trunk output of sample `index`, or the trunk
// computed (without autograd: the trunk must be frozen) and stored; then the neck.
// Without a cache: sam.encode(sam.preprocess(image)).
torch::Tensor encode_image(model::SamImpl& sam, const torch::Tensor& image, int64_t index, torch::Device device,
                           TrunkCache* trunk_cache);

// The decoder's low-resolution logits (N×1×L×L, float32) for an image embedding and N
// box prompts (single-mask output). Training and evaluation both decode this way, in
// the decoder's own precision also under bfloat16 autocast: train.precision = "bf16"
// puts the image encoder alone in bfloat16 (docs/training.md says why).
torch::Tensor decode_low_res(model::SamImpl& sam, const torch::Tensor& embedding, const torch::Tensor& boxes,
                             torch::Device device);

// decode_low_res of the embedding from encode_image (the encoder under autocast when `bf16`).
torch::Tensor predict_low_res(model::SamImpl& sam, const torch::Tensor& image, const torch::Tensor& boxes,
                              int64_t index, torch::Device device, TrunkCache* trunk_cache, bool bf16);

}  // namespace sparser::train

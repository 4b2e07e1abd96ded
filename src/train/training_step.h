#pragma once
// One optimiser step of data-parallel training (docs/training.md): each of this rank's
// images goes forward and backward on its own, gradients summing in the flat buffer;
// one all-reduce sums the buffers over the ranks, and the sum is divided by the number
// of images all ranks trained; then clipping and the optimiser. N ranks × 1 image per
// step therefore add the same per-image gradients as 1 rank × N images, also when some
// ranks skip an image that has no instances.
#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

#include "config/run_config.h"
#include "distributed/communicator.h"
#include "distributed/gradient_buffer.h"
#include "methods/trainable.h"
#include "model/sam.h"
#include "train/examples.h"
#include "train/loss.h"
#include "train/trunk_cache.h"

namespace sparser::train {

// Forward and backward of one image's loss from its embedding (computed by the caller,
// with autograd where the encoder trains): the mask decoder takes `prompts_per_pass` of
// the N box prompts at a time (0: all), each pass's loss weighted by its share of the N
// and sent backward on its own, so only one pass's activations are alive at a time; the
// embedding's summed gradient then goes back through the encoder once. The gradients
// and the returned loss are those of one pass over all N (up to float rounding). A
// non-finite loss is returned at once, without its backward pass.
double backward_image_loss(model::SamImpl& sam, const torch::Tensor& embedding, const torch::Tensor& boxes,
                           const torch::Tensor& targets, const LossWeights& weights, int64_t prompts_per_pass,
                           torch::Device device);

// The trainable tensors that the training loss never reaches. The loss (BCE + Dice +
// focal on the masks of box prompts) does not use the mask decoder's IoU predictions, nor
// the prompt encoder's point and mask inputs. PyTorch leaves the .grad of such a
// parameter None, and its Adam and AdamW then skip it, weight decay included; here every
// trainable tensor holds a view of the flat gradient buffer, so TrainingStep hides these
// gradients from the optimiser. Found from the autograd graph of one probe through the
// prompt encoder and mask decoder, with the official decoder's graph: all four
// hypernetwork MLPs take part (the single-mask output is a slice of the four masks), the
// IoU head does not. Tensors of the image encoder are never listed: the embedding
// reaches all of them.
methods::NamedTensors tensors_the_loss_does_not_reach(model::SamImpl& sam, torch::Device device);

// What one step trained on, over all ranks.
struct StepOutcome {
  int64_t images = 0;          // images with instances; the others are skipped
  std::optional<double> loss;  // mean over those images; none when there were none
};

class TrainingStep {
 public:
  TrainingStep(model::SamImpl& sam, distributed::FlatGradients& gradients, torch::optim::Optimizer& optimizer,
               distributed::Communicator& comm, const config::TrainSection& train, torch::Device device,
               TrunkCache* trunk_cache);
  // Trains on `examples` (this rank's images of the step) at learning rate `lr`. A step
  // in which no rank has an image leaves the weights and the optimiser's state as they
  // are, as a PyTorch loop that skips an empty batch does. A non-finite loss on any rank
  // throws on every rank, naming `where` (e.g. "epoch 2, step 41"), the rank and, on
  // that rank, the samples.
  StepOutcome run(const std::vector<TrainingExample>& examples, double lr, const std::string& where);
  // tensors_the_loss_does_not_reach(sam), which the optimiser leaves as they are.
  const methods::NamedTensors& unreached() const { return unreached_; }

 private:
  model::SamImpl& sam_;
  distributed::FlatGradients& gradients_;
  torch::optim::Optimizer& optimizer_;
  distributed::Communicator& comm_;
  const config::TrainSection& train_;
  torch::Device device_;
  TrunkCache* trunk_cache_;
  methods::NamedTensors unreached_;
};

}  // namespace sparser::train

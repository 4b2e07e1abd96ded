#pragma once
// Checkpoints of a run: the trained tensors (a .pth delta, readable by Python), the
// optimiser state, and the position in the data. All randomness of training is keyed by
// (seed, epoch, sample), so the position is the whole RNG state: a resumed run ends
// with exactly the parameters of an uninterrupted one.
#include <torch/torch.h>

#include <optional>
#include <string>

#include "methods/trainable.h"

namespace sparser::train {

struct Position {
  int64_t epoch = 0;          // epoch in progress (or the next one, when step_in_epoch = 0)
  int64_t step_in_epoch = 0;  // steps of `epoch` already taken
  int64_t global_step = 0;
  int64_t world_size = 1;     // steps are counted for this many ranks
  // Totals over every session of the run (a resumed run adds to them).
  int64_t trained_images = 0;  // images of all ranks
  double training_seconds = 0;  // time inside training steps
  double wall_seconds = 0;      // time of the earlier sessions, up to their last checkpoint
  // data::contents_identity of the train split the position is in; "" in checkpoints
  // written before it was recorded.
  std::string train_data;
};

// <run>/checkpoints/step_<N>/{trained.pth, optimizer.pt, state.json}, written to a
// temporary directory and renamed into place; the two newest are kept. A write that
// fails (a full disk) throws naming the file and leaves the checkpoints as they were.
void save_checkpoint(const std::string& run_dir, const methods::NamedTensors& trained,
                     torch::optim::Optimizer& optimizer, const Position& position);

// The newest complete checkpoint directory (one with all three files), if any.
std::optional<std::string> latest_checkpoint(const std::string& run_dir);

// Restores tensors and optimiser state; returns the position to continue from.
Position load_checkpoint(const std::string& checkpoint_dir, model::SamImpl& sam, torch::optim::Optimizer& optimizer);

}  // namespace sparser::train

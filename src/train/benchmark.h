#pragma once
// Timings for sparser_bench: one training step of a method on random data (the same
// step the trainer takes: encoder batch, box-prompted decoder, loss, backward, Adam),
// the encoder forward alone, and the machine's GEMM rate for efficiency figures.
#include <torch/torch.h>

#include <string>
#include <vector>

#include "distributed/communicator.h"
#include "methods/method_config.h"
#include "model/sam_config.h"

namespace sparser::train {

struct Timing {
  std::string name;
  double median_seconds = 0;
  double min_seconds = 0;
  int64_t repeats = 0;
  int64_t peak_rss_bytes = 0;  // of the process so far (Linux VmHWM)
};

struct BenchOptions {
  model::SamConfig model;
  int64_t boxes = 4;
  int64_t warmup = 1;
  int64_t repeats = 3;
};

// Median time of one training step of `method` (random weights and image). `cached`:
// the trunk's output is computed once beforehand, as the frozen-trunk cache provides it.
Timing time_training_step(const BenchOptions& options, const methods::MethodConfig& method, const std::string& name,
                          bool cached = false);
// Median time of the image encoder's forward pass without autograd.
Timing time_encoder_forward(const BenchOptions& options);
// Median time of averaging a float buffer of `values` elements over the ranks of `comm`
// (the per-step gradient all-reduce of a method with that many trainable values).
Timing time_allreduce(distributed::Communicator& comm, int64_t values, int64_t repeats = 10);
// Median time to read, decode and prepare (resize, jitter) one sample of a split.
Timing time_sample_loading(const std::string& manifest, int64_t image_size, int64_t samples);
// Where the encoder forward's time goes: total milliseconds per operator (LibTorch's
// profiler; nested operators are counted in their callers too), largest first.
std::vector<std::pair<std::string, double>> profile_encoder_forward(const BenchOptions& options);
// Achieved FLOP/s of an n×n×n float matmul.
double gemm_flops_per_second(int64_t n = 1024, int64_t repeats = 5);
int64_t peak_rss_bytes();

}  // namespace sparser::train

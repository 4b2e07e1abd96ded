#pragma once
// Timings for sparser_bench: one training step of a method on random data (the same
// step the trainer takes: encoder batch, box-prompted decoder, loss, backward, Adam),
// the encoder forward alone, and the machine's GEMM rate for efficiency figures.
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "config/run_config.h"
#include "data/shard_dataset.h"
#include "distributed/communicator.h"
#include "methods/method_config.h"
#include "model/sam_config.h"

namespace sparser::train {

// Warm-up goes on past the requested steps while a warm-up step still took more than
// kSettledPageFaults page faults (4 MiB of memory touched for the first time: the heap
// still growing to the step's working size, and such steps are slower), at most
// kMaxExtraWarmup steps more, so that the timed steps are the steady state a training run
// spends its epochs in.
inline constexpr int64_t kSettledPageFaults = 1024;
inline constexpr int64_t kMaxExtraWarmup = 8;

// Minor page faults of this process so far (Linux getrusage).
int64_t page_faults();

struct Timing {
  std::string name;
  double median_seconds = 0;
  double min_seconds = 0;
  int64_t repeats = 0;
  int64_t warmup = 0;               // warm-up steps taken (the requested ones and any extra)
  double page_faults_per_step = 0;  // mean over the timed steps
  int64_t peak_rss_bytes = 0;       // of the process so far (Linux VmHWM)
  int64_t peak_device_bytes = 0;    // CUDA: the most the caching allocator had handed out so far
  // The device's GEMM rate (gemm_flops_per_second), measured just before the warm-up and just after the
  // last repeat (mean of the two): efficiency figures then divide by the rate of the
  // same minutes, on a shared machine whose speed drifts by tens of per cent.
  double gemm_flops_per_second = 0;
};

struct BenchOptions {
  model::SamConfig model;
  int64_t boxes = 4;
  int64_t prompts_per_pass = config::TrainSection{}.prompts_per_pass;
  int64_t warmup = 1;  // at least; 0: none, not even the extra steps of an unsettled heap
  int64_t repeats = 3;
  torch::Device device = torch::kCPU;
  bool bf16 = false;  // the image encoder under bfloat16 autocast, as train.precision = "bf16"
};

// One unit of work to time or profile: the model and data are set up when it is made,
// each call runs the work once.
using Workload = std::function<void()>;
// One training step of `method` (random weights and image). `cached`: the trunk's output
// is computed once beforehand, as the frozen-trunk cache provides it.
Workload training_step_workload(const BenchOptions& options, const methods::MethodConfig& method, bool cached = false);
// The image encoder's forward pass without autograd.
Workload encoder_forward_workload(const BenchOptions& options);
// Warm-up, then the median of options.repeats calls; the GEMM rate around them.
Timing time_workload(const std::string& name, const BenchOptions& options, const Workload& work);
// One call of each workload in turn, options.repeats turns after the warm-up turns
// (options.warmup, and more while any workload's step still page-faulted, as above): the
// seconds and page faults of every call, per workload, and the GEMM rate around them.
// Ratios between workloads of the same turn cancel most of a shared machine's drift,
// which separate processes minutes apart do not.
struct InterleavedTiming {
  std::vector<std::vector<double>> seconds;
  std::vector<std::vector<int64_t>> page_faults;
  int64_t warmup = 0;  // warm-up turns taken
  double gemm_flops_per_second = 0;
};
InterleavedTiming time_interleaved(const BenchOptions& options, const std::vector<Workload>& works);
// Median time of averaging a float buffer of `values` elements over the ranks of `comm`
// (the per-step gradient all-reduce of a method with that many trainable values).
Timing time_allreduce(distributed::Communicator& comm, int64_t values, torch::Device device = torch::kCPU,
                      int64_t repeats = 10);
// The split that time_sample_loading reads, without the background checksum pass (which
// would compete with the measured reads). Throws, naming the manifest, if it cannot be
// read or holds no samples: a benchmark opens it before measuring anything.
std::unique_ptr<data::ShardDataset> open_sample_source(const std::string& manifest);
// Median time to read, decode and prepare (resize, jitter) one sample of `dataset`, over
// `samples` loads (at least 1).
Timing time_sample_loading(const data::ShardDataset& dataset, int64_t image_size, int64_t samples);
// Where one call of `work` spends its time: self milliseconds (time in nested operators
// is counted where it is spent) per LibTorch operator and input shapes, largest first.
// The work runs once untimed before.
struct ProfileRow {
  std::string label;  // e.g. "aten::mm [4096,768] [768,3072]"
  double self_ms = 0;
  int64_t calls = 0;
};
std::vector<ProfileRow> profile_workload(const Workload& work);
// The middle value of `values` (not empty), or the mean of the two middle values of an even count.
double median(std::vector<double> values);
// Achieved FLOP/s of an n×n×n matmul on `device` (float32, or bfloat16 with `bf16`).
double gemm_flops_per_second(torch::Device device = torch::kCPU, bool bf16 = false, int64_t repeats = 5);
int64_t peak_rss_bytes();
// 0 for the CPU.
int64_t peak_device_bytes(torch::Device device);

}  // namespace sparser::train

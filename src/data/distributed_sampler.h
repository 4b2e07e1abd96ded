#pragma once
// Which global sample indices a rank visits in an epoch, with the semantics of PyTorch's
// DistributedSampler: a permutation of 0..N-1 seeded by (seed, epoch) (or the identity
// when not shuffling), made divisible by the number of ranks either by repeating its
// first indices (pad) or by dropping its tail (drop_last); rank r takes positions
// r, r + R, r + 2R, ... Every rank gets the same number of steps, and without padding
// every sample is seen exactly once per epoch across ranks. The permutation itself
// comes from util::SeededRng, so it is reproducible but not torch.randperm's.
#include <cstdint>
#include <vector>

namespace sparser::data {

struct SamplerOptions {
  int64_t num_replicas = 1;
  int64_t rank = 0;
  bool shuffle = true;
  uint64_t seed = 0;
  bool drop_last = false;
};

class DistributedSampler {
 public:
  DistributedSampler(int64_t dataset_size, SamplerOptions options);

  void set_epoch(int64_t epoch) { epoch_ = epoch; }
  int64_t epoch() const { return epoch_; }
  // Samples per rank per epoch (the same on every rank).
  int64_t num_samples() const { return num_samples_; }
  // This rank's indices for the current epoch, in visiting order.
  std::vector<int64_t> indices() const;

 private:
  int64_t dataset_size_;
  SamplerOptions options_;
  int64_t num_samples_;
  int64_t epoch_ = 0;
};

}  // namespace sparser::data

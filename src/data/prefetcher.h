#pragma once
// Background loading for the training loop: N worker threads read, decode and prepare
// the samples of one epoch's index list (from DistributedSampler) ahead of the consumer,
// at most `capacity` samples ahead, and next() hands them out in index-list order.
//
// Preparation (prepare_sample) is reproducible regardless of thread timing: all its
// randomness comes from an RNG seeded by (seed, epoch, global sample index) — not by rank,
// so a sample is prepared the same way whatever the number of ranks.
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "data/sample.h"
#include "data/shard_dataset.h"

namespace sparser::data {

struct PrepareOptions {
  int64_t image_size = 1024;   // ResizeLongestSide target (the model's input size)
  int64_t max_instances = 0;   // per sample; 0 = keep all (a seeded random subset otherwise)
  int64_t box_jitter_px = 0;   // each box side moves outwards by U{0..box_jitter_px} model pixels
  uint64_t seed = 0;
};

// The sample's image resized to the model frame (ResizeLongestSide to `image_size`, no
// padding: the model pads); one that cannot be (too elongated) is an error naming the sample.
cv::Mat model_frame_image(const Sample& sample, int64_t image_size);

// Resizes the image (model_frame_image) and masks (nearest
// neighbour) to the model frame, maps boxes into it, picks at most max_instances
// instances and jitters the boxes, clipped to the resized image.
Sample prepare_sample(Sample sample, const PrepareOptions& options, int64_t epoch);

struct PrefetchOptions {
  PrepareOptions prepare;
  int num_workers = 4;
  int64_t capacity = 16;  // samples prepared ahead of the consumer
};

class Prefetcher {
 public:
  Prefetcher(const ShardDataset& dataset, std::vector<int64_t> indices, PrefetchOptions options, int64_t epoch);
  ~Prefetcher();
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // The next sample in index-list order, or nullopt after the last. Rethrows a worker's
  // error (e.g. DataError for a damaged shard) at the sample it happened on.
  std::optional<Sample> next();

 private:
  struct Slot {
    std::optional<Sample> sample;
    std::exception_ptr error;
  };
  void work();

  const ShardDataset& dataset_;
  std::vector<int64_t> indices_;
  PrefetchOptions options_;
  int64_t epoch_;
  std::mutex mutex_;
  std::condition_variable changed_;
  size_t next_to_claim_ = 0;
  size_t consumed_ = 0;
  bool stopping_ = false;
  std::map<size_t, Slot> ready_;
  std::vector<std::thread> workers_;
};

}  // namespace sparser::data

#include "data/prefetcher.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <numeric>
#include <stdexcept>

#include "model/resize_longest_side.h"
#include "util/seeded_rng.h"

namespace sparser::data {

cv::Mat model_frame_image(const Sample& sample, int64_t image_size) {
  try {
    return model::ResizeLongestSide(image_size).apply_image(sample.image);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(describe(sample) + ": " + e.what());
  }
}

Sample prepare_sample(Sample sample, const PrepareOptions& options, int64_t epoch) {
  util::SeededRng rng({options.seed, static_cast<uint64_t>(epoch),
                       static_cast<uint64_t>(sample.index)});
  auto& instances = sample.instances;
  if (options.max_instances > 0 && static_cast<int64_t>(instances.size()) > options.max_instances) {
    std::vector<size_t> order(instances.size());
    std::iota(order.begin(), order.end(), size_t{0});
    rng.shuffle(order);
    order.resize(static_cast<size_t>(options.max_instances));
    std::sort(order.begin(), order.end());
    std::vector<Instance> kept;
    for (size_t k : order) kept.push_back(std::move(instances[k]));
    instances = std::move(kept);
  }
  const model::ResizeLongestSide resize(options.image_size);
  const int64_t h = sample.image.rows, w = sample.image.cols;
  sample.image = model_frame_image(sample, options.image_size);
  const float max_x = static_cast<float>(sample.image.cols), max_y = static_cast<float>(sample.image.rows);
  const auto jitter = [&] { return static_cast<float>(rng.below(static_cast<uint64_t>(options.box_jitter_px) + 1)); };
  for (auto& instance : instances) {
    cv::Mat resized;
    cv::resize(instance.mask, resized, sample.image.size(), 0, 0, cv::INTER_NEAREST);
    instance.mask = resized;
    Box b = resize.apply_box(instance.box, h, w);
    if (options.box_jitter_px > 0) {
      b[0] -= jitter();
      b[1] -= jitter();
      b[2] += jitter();
      b[3] += jitter();
    }
    instance.box = {std::clamp(b[0], 0.f, max_x), std::clamp(b[1], 0.f, max_y), std::clamp(b[2], 0.f, max_x),
                    std::clamp(b[3], 0.f, max_y)};
  }
  return sample;
}

Prefetcher::Prefetcher(const ShardDataset& dataset, std::vector<int64_t> indices, PrefetchOptions options,
                       int64_t epoch)
    : dataset_(dataset), indices_(std::move(indices)), options_(options), epoch_(epoch) {
  options_.capacity = std::max<int64_t>(options_.capacity, 1);
  for (int i = 0; i < std::max(options_.num_workers, 1); ++i) workers_.emplace_back([this] { work(); });
}

Prefetcher::~Prefetcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  for (auto& worker : workers_) worker.join();
}

void Prefetcher::work() {
  for (;;) {
    size_t position;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] {
        return stopping_ || next_to_claim_ >= indices_.size() ||
               next_to_claim_ < consumed_ + static_cast<size_t>(options_.capacity);
      });
      if (stopping_ || next_to_claim_ >= indices_.size()) return;
      position = next_to_claim_++;
    }
    Slot slot;
    try {
      slot.sample = prepare_sample(dataset_.get(indices_[position]), options_.prepare, epoch_);
    } catch (...) {
      slot.error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ready_.emplace(position, std::move(slot));
    }
    changed_.notify_all();
  }
}

std::optional<Sample> Prefetcher::next() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (consumed_ >= indices_.size()) return std::nullopt;
  changed_.wait(lock, [&] { return ready_.count(consumed_) > 0; });
  auto node = ready_.extract(consumed_);
  ++consumed_;
  lock.unlock();
  changed_.notify_all();
  if (node.mapped().error) std::rethrow_exception(node.mapped().error);
  return std::move(node.mapped().sample);
}

}  // namespace sparser::data

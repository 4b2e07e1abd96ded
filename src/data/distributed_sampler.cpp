#include "data/distributed_sampler.h"

#include <numeric>
#include <stdexcept>
#include <string>

#include "util/seeded_rng.h"

namespace sparser::data {

DistributedSampler::DistributedSampler(int64_t dataset_size, SamplerOptions options)
    : dataset_size_(dataset_size), options_(options) {
  const int64_t r = options_.num_replicas;
  if (r < 1 || options_.rank < 0 || options_.rank >= r)
    throw std::invalid_argument("DistributedSampler: rank " + std::to_string(options_.rank) + " of " +
                                std::to_string(r) + " replicas is invalid");
  if (dataset_size_ < 0) throw std::invalid_argument("DistributedSampler: negative dataset size");
  if (options_.drop_last && dataset_size_ < r)
    throw std::invalid_argument("DistributedSampler: drop_last with " + std::to_string(dataset_size_) +
                                " samples and " + std::to_string(r) + " replicas leaves no step");
  // As PyTorch: drop_last → floor(N / R), otherwise ceil(N / R).
  num_samples_ = options_.drop_last ? dataset_size_ / r : (dataset_size_ + r - 1) / r;
}

std::vector<int64_t> DistributedSampler::indices() const {
  std::vector<int64_t> order(static_cast<size_t>(dataset_size_));
  std::iota(order.begin(), order.end(), int64_t{0});
  if (options_.shuffle) {
    util::SeededRng rng({options_.seed, static_cast<uint64_t>(epoch_)});
    rng.shuffle(order);
  }
  const size_t total = static_cast<size_t>(num_samples_ * options_.num_replicas);
  if (order.size() < total && !order.empty()) {  // pad by repeating from the start, as PyTorch
    const size_t original = order.size();
    for (size_t i = 0; order.size() < total; ++i) order.push_back(order[i % original]);
  }
  order.resize(total);
  std::vector<int64_t> mine;
  mine.reserve(static_cast<size_t>(num_samples_));
  for (size_t i = static_cast<size_t>(options_.rank); i < total; i += static_cast<size_t>(options_.num_replicas))
    mine.push_back(order[i]);
  return mine;
}

}  // namespace sparser::data

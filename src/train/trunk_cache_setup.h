#pragma once
// Whether and where a run keeps its frozen trunk's features (train.trunk_cache): off
// when the method trains the trunk; otherwise memory or disk as requested, or, for
// "auto", memory if the estimated size fits train.trunk_cache_memory_gb, else disk if
// it fits train.trunk_cache_disk_gb, else off. The decision and its numbers are logged.
#include <memory>
#include <optional>

#include "config/run_config.h"
#include "data/shard_dataset.h"
#include "model/sam.h"
#include "train/run_log.h"
#include "train/trunk_cache.h"

namespace sparser::train {

struct TrunkCaches {
  std::shared_ptr<TrunkCache> train, val;  // null where not cached
};

TrunkCaches open_trunk_caches(const config::RunConfig& config, model::SamImpl& sam,
                              const std::optional<data::ShardDataset>& val, bool trains, torch::Device device,
                              int64_t rank, RunLog& log);

}  // namespace sparser::train

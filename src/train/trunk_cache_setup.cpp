#include "train/trunk_cache_setup.h"

#include <cstdio>
#include <filesystem>

namespace fs = std::filesystem;

namespace sparser::train {

namespace {

// Bytes free where `dir` is or would be created (its nearest existing ancestor).
double available_bytes(fs::path dir) {
  std::error_code error;
  dir = fs::absolute(dir, error);
  while (!dir.empty() && !fs::exists(dir, error)) dir = dir.parent_path();
  const auto space = fs::space(dir.empty() ? fs::path("/") : dir, error);
  return error ? 0.0 : static_cast<double>(space.available);
}

// The disk cache of one split, or null (logged) when it cannot be had: another process
// holds its file, or the directory cannot be written. The run is the same without it.
std::shared_ptr<TrunkCache> acquire_or_go_without(const TrunkCacheKey& key, const TrunkCacheOptions& options,
                                                  const std::string& split, RunLog& log) {
  const auto note = [&log](const std::string& line) { log.info(line); };
  try {
    return acquire_trunk_cache(key, options, note);
  } catch (const std::exception& e) {
    if (options.mode != TrunkCacheMode::Disk) throw;
    log.info("trunk cache: off for the " + split + " split: " + e.what() +
             "; this run computes trunk features each time");
    return nullptr;
  }
}

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (bytes >= 1000 && u < 4) bytes /= 1000, ++u;
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, bytes < 10 && u > 0 ? "%.1f %s" : "%.0f %s", bytes, units[u]);
  return buffer;
}

}  // namespace

TrunkCaches open_trunk_caches(const config::RunConfig& cfg, model::SamImpl& sam,
                               const std::optional<data::ShardDataset>& val, bool trains, torch::Device device,
                               int64_t rank, RunLog& log) {
  const auto& t = cfg.train;
  if (t.trunk_cache == "off") {
    log.info("trunk cache: off (train.trunk_cache = \"off\")");
    return {};
  }
  if (sam.image_encoder->trunk_requires_grad()) {  // "auto": the config refuses "memory" and "disk" here
    log.info("trunk cache: off (method " + methods::to_string(cfg.method.name) + " trains the trunk)");
    return {};
  }
  const auto& c = sam.config();
  const auto g = c.embedding_size();
  const auto dtype = t.trunk_cache_dtype == "fp16" ? TrunkCacheDtype::Fp16 : TrunkCacheDtype::Fp32;
  const double per_image = static_cast<double>(g * g * c.encoder_embed_dim * (dtype == TrunkCacheDtype::Fp16 ? 2 : 4));
  std::optional<data::Manifest> train_manifest;
  if (trains) train_manifest = data::read_manifest(cfg.data.train);
  const int64_t images = (train_manifest ? train_manifest->num_samples() : 0) + (val ? val->size() : 0);
  const double total = per_image * static_cast<double>(images);
  const auto cache_dir = t.trunk_cache_dir.empty() ? cfg.run.output_dir + "/.trunk_cache" : t.trunk_cache_dir;
  TrunkCacheMode mode = TrunkCacheMode::Off;
  std::string budget;
  if (t.trunk_cache == "memory") {
    mode = TrunkCacheMode::Memory, budget = "requested";
  } else if (t.trunk_cache == "disk") {
    mode = TrunkCacheMode::Disk, budget = "requested";
  } else if (total <= t.trunk_cache_memory_gb * 1e9) {
    mode = TrunkCacheMode::Memory, budget = "auto, budget " + human_bytes(t.trunk_cache_memory_gb * 1e9);
  } else if (total <= t.trunk_cache_disk_gb * 1e9 && total <= available_bytes(cache_dir)) {
    mode = TrunkCacheMode::Disk, budget = "auto, over the memory budget " + human_bytes(t.trunk_cache_memory_gb * 1e9) +
                                          ", disk budget " + human_bytes(t.trunk_cache_disk_gb * 1e9);
  } else if (total <= t.trunk_cache_disk_gb * 1e9) {
    budget = "auto, over the memory budget " + human_bytes(t.trunk_cache_memory_gb * 1e9) + ", and " + cache_dir +
             " has " + human_bytes(available_bytes(cache_dir)) + " free";
  } else {
    budget = "auto, over the memory budget " + human_bytes(t.trunk_cache_memory_gb * 1e9) + " and the disk budget " +
             human_bytes(t.trunk_cache_disk_gb * 1e9);
  }
  log.info("trunk cache: " + to_string(mode) + ", " + to_string(dtype) + ", " + std::to_string(images) +
           " images × " + human_bytes(per_image) + " = " + human_bytes(total) + " (" + budget + ")");
  if (mode == TrunkCacheMode::Off) return {};

  const auto trunk = trunk_hash(*sam.image_encoder);
  TrunkCacheOptions options;
  options.mode = mode;
  options.dtype = dtype;
  options.sample_shape = {g, g, c.encoder_embed_dim};
  options.dir = cache_dir;
  options.rank = rank;
  TrunkCaches caches;
  if (train_manifest) {
    options.num_samples = train_manifest->num_samples();
    caches.train = acquire_or_go_without(
        make_trunk_cache_key(c, trunk, *train_manifest, "train", device.str(), t.precision, dtype), options, "train",
        log);
  }
  if (val) {
    options.num_samples = val->size();
    caches.val = acquire_or_go_without(
        make_trunk_cache_key(c, trunk, val->manifest(), "eval", device.str(), t.precision, dtype), options, "val", log);
  }
  std::vector<std::shared_ptr<TrunkCache>> keep;
  for (const auto& cache : {caches.train, caches.val})
    if (cache) keep.push_back(cache);
  retain_trunk_caches(keep);
  return caches;
}

}  // namespace sparser::train

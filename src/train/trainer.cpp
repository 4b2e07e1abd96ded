#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "checkpoint/state_dict.h"
#include "data/distributed_sampler.h"
#include "data/prefetcher.h"
#include "distributed/gradient_buffer.h"
#include "methods/parser.h"
#include "methods/step_scope.h"
#include "train/evaluate.h"
#include "train/examples.h"
#include "train/loss.h"
#include "train/model_setup.h"
#include "train/progress.h"
#include "train/run_log.h"
#include "train/stop_signal.h"
#include "train/training_state.h"
#include "train/trunk_cache.h"
#include "util/atomic_file.h"
#include "util/version.h"

namespace fs = std::filesystem;

namespace sparser::train {

namespace {

using Clock = std::chrono::steady_clock;

double learning_rate(const config::TrainSection& t, int64_t global_step, int64_t total_steps, int64_t epoch) {
  double lr = t.lr;
  if (t.schedule == "cosine" && total_steps > t.warmup_steps) {
    const double progress = static_cast<double>(global_step - t.warmup_steps) / (total_steps - t.warmup_steps);
    lr *= 0.5 * (1 + std::cos(M_PI * std::clamp(progress, 0.0, 1.0)));
  } else if (t.schedule == "step") {
    lr *= std::pow(t.gamma, static_cast<double>(epoch / t.step_size));
  }
  if (global_step < t.warmup_steps) lr *= static_cast<double>(global_step + 1) / t.warmup_steps;
  return lr;
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const methods::NamedTensors& trainable,
                                                        const config::TrainSection& t) {
  std::vector<torch::Tensor> params;
  for (const auto& [name, p] : trainable) params.push_back(p);
  if (t.optimizer == "adamw")
    return std::make_unique<torch::optim::AdamW>(params, torch::optim::AdamWOptions(t.lr).weight_decay(t.weight_decay));
  return std::make_unique<torch::optim::Adam>(params, torch::optim::AdamOptions(t.lr).weight_decay(t.weight_decay));
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

nlohmann::json metrics_json(const EvalResult& r, const config::EvalSection& eval) {
  nlohmann::json m;
  for (const auto& name : eval.metrics) m[name] = name == "miou" ? r.miou : name == "f1" ? r.f1 : r.dsc;
  if (eval.per_class) {
    nlohmann::json per_class;
    for (const auto& [cls, dsc] : r.per_class_dsc) per_class[std::to_string(cls)] = dsc;
    m["per_class_dsc"] = per_class;
  }
  return m;
}

nlohmann::json method_json(const methods::MethodConfig& m) {
  nlohmann::json j{{"name", methods::to_string(m.name)}};
  switch (m.name) {
    case methods::MethodName::Parser: j["layers"] = m.parser_layers, j["train"] = methods::to_string(m.parser_train); break;
    case methods::MethodName::Lora: j["rank"] = m.lora_rank, j["alpha"] = m.lora_alpha, j["targets"] = m.lora_targets; break;
    case methods::MethodName::Adapter: j["bottleneck"] = m.adapter_bottleneck; break;
    case methods::MethodName::Fact: j["rank"] = m.fact_rank, j["scale"] = m.fact_scale, j["targets"] = m.fact_targets; break;
    default: break;
  }
  return j;
}

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (bytes >= 1000 && u < 4) bytes /= 1000, ++u;
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, bytes < 10 && u > 0 ? "%.1f %s" : "%.0f %s", bytes, units[u]);
  return buffer;
}

struct TrunkCaches {
  std::shared_ptr<TrunkCache> train, val;
};

// Chooses and opens the frozen-trunk caches of a run (docs/training.md, "Frozen-trunk
// cache"): the decision and its numbers go to the log.
TrunkCaches setup_trunk_caches(const config::RunConfig& cfg, model::SamImpl& sam,
                               const std::optional<data::ShardDataset>& val, bool trains, torch::Device device,
                               int64_t rank, RunLog& log) {
  const auto& t = cfg.train;
  if (t.trunk_cache == "off") {
    log.info("trunk cache: off (train.trunk_cache = \"off\")");
    return {};
  }
  if (sam.image_encoder->trunk_requires_grad()) {
    if (t.trunk_cache != "auto")
      throw config::ConfigError(cfg.source + ": train.trunk_cache = \"" + t.trunk_cache + "\": method " +
                                methods::to_string(cfg.method.name) +
                                " trains the image encoder's trunk, whose features therefore cannot be cached; "
                                "use \"auto\" or \"off\"");
    log.info("trunk cache: off (method " + methods::to_string(cfg.method.name) + " trains the trunk)");
    return {};
  }
  const auto& c = sam.config();
  const auto g = c.embedding_size();
  const auto dtype = t.trunk_cache_dtype == "fp16" ? TrunkCacheDtype::Fp16 : TrunkCacheDtype::Fp32;
  const double per_image = static_cast<double>(g * g * c.encoder_embed_dim * (dtype == TrunkCacheDtype::Fp16 ? 2 : 4));
  std::optional<data::Manifest> train_manifest;
  if (trains && !cfg.data.train.empty()) train_manifest = data::read_manifest(cfg.data.train);
  const int64_t images = (train_manifest ? train_manifest->num_samples() : 0) + (val ? val->size() : 0);
  const double total = per_image * static_cast<double>(images);
  TrunkCacheMode mode = TrunkCacheMode::Off;
  std::string budget;
  if (t.trunk_cache == "memory") {
    mode = TrunkCacheMode::Memory, budget = "requested";
  } else if (t.trunk_cache == "disk") {
    mode = TrunkCacheMode::Disk, budget = "requested";
  } else if (total <= t.trunk_cache_memory_gb * 1e9) {
    mode = TrunkCacheMode::Memory, budget = "auto, budget " + human_bytes(t.trunk_cache_memory_gb * 1e9);
  } else if (total <= t.trunk_cache_disk_gb * 1e9) {
    mode = TrunkCacheMode::Disk, budget = "auto, over the memory budget " + human_bytes(t.trunk_cache_memory_gb * 1e9) +
                                          ", disk budget " + human_bytes(t.trunk_cache_disk_gb * 1e9);
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
  options.dir = t.trunk_cache_dir.empty() ? cfg.run.output_dir + "/.trunk_cache" : t.trunk_cache_dir;
  options.rank = rank;
  const auto note = [&log](const std::string& line) { log.info(line); };
  TrunkCaches caches;
  if (train_manifest) {
    options.num_samples = train_manifest->num_samples();
    caches.train = acquire_trunk_cache(
        make_trunk_cache_key(c, trunk, *train_manifest, "train", device.str(), t.precision, dtype), options, note);
  }
  if (val) {
    options.num_samples = val->size();
    caches.val = acquire_trunk_cache(
        make_trunk_cache_key(c, trunk, val->manifest(), "eval", device.str(), t.precision, dtype), options, note);
  }
  std::vector<std::shared_ptr<TrunkCache>> keep;
  for (const auto& cache : {caches.train, caches.val})
    if (cache) keep.push_back(cache);
  retain_trunk_caches(keep);
  return caches;
}

}  // namespace

torch::Device choose_device(const std::string& setting, const distributed::Environment& env) {
  if (setting == "cpu") return torch::kCPU;
  if (setting == "cuda" && !env.device().is_cuda())
    throw std::runtime_error("run.device = \"cuda\" but no CUDA device is available to this build");
  return env.device();  // auto: this rank's GPU when there is one
}

int train_run(const RunSpec& spec, distributed::Environment& env, distributed::Communicator& comm, bool resume) {
  const auto& cfg = spec.config;
  const bool root = env.is_root();
  const auto rank = env.rank(), world = env.world_size();
  if (root) fs::create_directories(spec.run_dir);
  comm.barrier();
  RunLog log(spec.run_dir, root);
  if (root) util::write_file_atomically(spec.run_dir + "/config.toml", config::to_toml(cfg));
  const auto device = choose_device(cfg.run.device, env);
  if (cfg.train.precision == "bf16" && !device.is_cuda())
    throw std::runtime_error(cfg.source + ": train.precision = \"bf16\" needs a CUDA device; use \"fp32\" on CPU");

  // Same seed on every rank; rank 0's values are broadcast anyway.
  torch::manual_seed(static_cast<uint64_t>(spec.seed));
  auto setup = build_model(cfg.model, cfg.method);
  auto& sam = *setup.sam;
  sam.to(device);
  const auto trainable = methods::trainable_parameters(sam);
  const auto counts = methods::count_trainable(sam);
  log.info("run " + spec.run_id + ": method " + methods::to_string(cfg.method.name) + ", " +
           std::to_string(counts.total) + " trainable parameters, " + std::to_string(world) + " rank(s), device " +
           device.str() + ", " + std::to_string(torch::get_num_threads()) + " thread(s) per rank");

  std::optional<data::ShardDataset> val;
  if (!cfg.data.val.empty()) val.emplace(cfg.data.val);
  const bool trains = cfg.method.name != methods::MethodName::ZeroShot && cfg.train.epochs > 0;
  const auto trunk_caches = setup_trunk_caches(cfg, sam, val, trains, device, rank, log);
  const auto start_time = Clock::now();
  nlohmann::json best, final_metrics;
  Progress* progress_bar = nullptr;  // set once training starts; evaluation lines end the bar first
  auto note_evaluation = [&](int64_t epoch, const nlohmann::json& metrics) {
    final_metrics = metrics;
    const auto& key = cfg.eval.metrics.front();
    if (best.empty() || metrics[key].get<double>() > best[key].get<double>()) {
      best = metrics;
      best["epoch"] = epoch;
    }
  };
  auto run_evaluation = [&](int64_t epoch, int64_t global_step) {
    if (!val) return;
    if (progress_bar) progress_bar->finish();
    const auto result = evaluate(sam, *val, comm, rank, world, device, trunk_caches.val.get());
    const auto metrics = metrics_json(result, cfg.eval);
    log.record({{"type", "eval"}, {"epoch", epoch}, {"step", global_step}, {"instances", result.instances},
                {"metrics", metrics}});
    std::string line = "eval after epoch " + std::to_string(epoch) + ":";
    for (const auto& name : cfg.eval.metrics) line += " " + name + " " + std::to_string(metrics[name].get<double>());
    log.info(line);
    note_evaluation(epoch, metrics);
  };
  auto write_summary = [&](const std::string& status, double images_per_second) {
    if (!root) return;
    nlohmann::json trainable_json{{"total", counts.total}, {"by_module", counts.by_module}, {"by_kind", counts.by_kind}};
    const nlohmann::json summary{
        {"schema", 1}, {"run_id", spec.run_id}, {"experiment", cfg.run.name}, {"dataset", cfg.run.dataset},
        {"seed", spec.seed}, {"status", status}, {"error", ""}, {"group", spec.group},
        {"method", method_json(cfg.method)},
        {"world_size", world}, {"trainable", trainable_json}, {"final", final_metrics}, {"best", best},
        {"train_images_per_second", images_per_second},
        {"wall_time_seconds", std::chrono::duration<double>(Clock::now() - start_time).count()},
        {"git_commit", util::kGitCommit},
        {"versions", {{"sparser", util::kVersion}, {"libtorch", TORCH_VERSION}}}};
    util::write_file_atomically(spec.run_dir + "/summary.json", summary.dump(2) + "\n");
  };

  if (cfg.method.name == methods::MethodName::ZeroShot || cfg.train.epochs == 0) {
    run_evaluation(0, 0);
    write_summary("completed", 0.0);
    return 0;
  }

  distributed::FlatGradients grads(trainable);
  comm.check_consistent(grads.layout_hash(), "the trainable tensors (names, shapes, dtypes) built from the config");
  grads.broadcast_parameters(comm);
  std::map<std::string, torch::Tensor> pretrained_sigma;
  for (const auto& [name, layer] : setup.hooked_layers)
    if (auto parser = std::dynamic_pointer_cast<methods::SvdReparamHook>(layer->hook()))
      pretrained_sigma[name] = parser->reparam()->sigma.detach().cpu().clone();
  auto optimizer = make_optimizer(trainable, cfg.train);

  Position position;
  position.world_size = world;
  if (resume) {
    if (auto latest = latest_checkpoint(spec.run_dir)) {
      position = load_checkpoint(*latest, sam, *optimizer);
      if (position.world_size != world)
        throw std::runtime_error(*latest + ": saved with " + std::to_string(position.world_size) +
                                 " rank(s); resume with the same number (now " + std::to_string(world) + ")");
      for (const auto& record : log.rewind(position.global_step))
        if (record.value("type", "") == "eval") note_evaluation(record["epoch"].get<int64_t>(), record["metrics"]);
      log.info("resumed from " + *latest + " at epoch " + std::to_string(position.epoch) + ", step " +
               std::to_string(position.step_in_epoch));
    }
  }

  const data::ShardDataset train_set(cfg.data.train);
  data::DistributedSampler sampler(
      train_set.size(), {world, rank, cfg.data.shuffle, static_cast<uint64_t>(spec.seed), cfg.data.uneven == "drop"});
  const auto ips = cfg.train.images_per_step;
  const auto steps_per_epoch = (sampler.num_samples() + ips - 1) / ips;
  const auto total_steps = cfg.train.epochs * steps_per_epoch;
  if (steps_per_epoch == 0) throw std::runtime_error(cfg.data.train + ": no training samples for this rank");
  data::PrefetchOptions prefetch;
  prefetch.prepare = {cfg.model.sam.image_size, cfg.data.max_instances, cfg.data.box_jitter,
                      static_cast<uint64_t>(spec.seed)};
  prefetch.num_workers = static_cast<int>(cfg.data.workers);
  prefetch.capacity = cfg.data.prefetch;
  const LossWeights weights{cfg.train.loss_bce, cfg.train.loss_dice, cfg.train.loss_focal};
  Progress progress(total_steps, position.global_step, root);
  progress_bar = &progress;
  double images_per_second = 0;
  const auto save = [&] {
    if (root) save_checkpoint(spec.run_dir, trainable, *optimizer, position);
    comm.barrier();
  };

  sam.train();
  for (int64_t epoch = position.epoch; epoch < cfg.train.epochs; ++epoch) {
    sampler.set_epoch(epoch);
    auto indices = sampler.indices();
    const auto first_step = epoch == position.epoch ? position.step_in_epoch : 0;
    indices.erase(indices.begin(), indices.begin() + std::min<int64_t>(first_step * ips, indices.size()));
    data::Prefetcher prefetcher(train_set, indices, prefetch, epoch);
    for (int64_t step = first_step; step < steps_per_epoch; ++step) {
      const auto step_start = Clock::now();
      std::vector<TrainingExample> examples;
      for (int64_t k = 0; k < ips; ++k) {
        auto sample = prefetcher.next();
        if (!sample) break;
        if (!sample->instances.empty()) examples.push_back(to_training_example(*sample, sam.config()));
      }
      // Gradient accumulation: one forward/backward per image, summed into the flat
      // buffer, then averaged over images and ranks. N ranks × 1 image per step and 1 rank
      // × N images per step therefore add the same per-image gradients.
      grads.zero_();
      double local_loss = 0;
      methods::StepScope step_scope(sam);  // PARSER builds W' once for the step's images
      for (const auto& ex : examples) {
        model::Prompts prompts;
        prompts.boxes = ex.boxes.to(device);
        const auto embedding = encode_image(sam, ex.image, ex.index, device, trunk_caches.train.get());
        const auto out = sam.decode(embedding, prompts, false);
        const auto loss = segmentation_loss(out.low_res_logits, ex.low_res_targets.to(device), weights).total;
        const double value = loss.item<double>();
        local_loss += value / static_cast<double>(examples.size());
        if (!std::isfinite(value)) break;
        loss.backward();
      }
      if (std::isfinite(local_loss)) step_scope.finish_backward();
      if (examples.size() > 1) grads.flat().div_(static_cast<double>(examples.size()));
      if (comm.any(!std::isfinite(local_loss))) {
        std::string which;
        for (const auto& ex : examples) which += (which.empty() ? "" : ", ") + std::to_string(ex.index);
        throw std::runtime_error("non-finite loss at epoch " + std::to_string(epoch) + ", step " +
                                 std::to_string(position.global_step + 1) +
                                 (std::isfinite(local_loss) ? std::string(" on another rank")
                                                            : " on rank " + std::to_string(rank) + ", samples " + which) +
                                 "; the last good checkpoint is kept");
      }
      comm.allreduce_mean_(grads.flat());
      if (cfg.train.grad_clip > 0) {
        const auto norm = grads.flat().norm().item<double>();
        if (norm > cfg.train.grad_clip) grads.flat().mul_(cfg.train.grad_clip / norm);
      }
      const double lr = learning_rate(cfg.train, position.global_step, total_steps, epoch);
      set_learning_rate(*optimizer, lr);
      optimizer->step();
      position.global_step += 1;
      position.epoch = epoch;
      position.step_in_epoch = step + 1;

      const double seconds = std::chrono::duration<double>(Clock::now() - step_start).count();
      images_per_second = static_cast<double>(world * ips) / seconds;
      if (position.global_step % cfg.run.log_every == 0 || position.global_step == total_steps) {
        const double mean_loss = comm.allreduce_sum(local_loss) / static_cast<double>(world);
        log.record({{"type", "step"}, {"epoch", epoch}, {"step", position.global_step}, {"loss", mean_loss},
                    {"lr", lr}, {"images_per_second", images_per_second}});
      }
      progress.update(position.global_step, epoch, local_loss, images_per_second);
      if (cfg.train.checkpoint_every > 0 && position.global_step % cfg.train.checkpoint_every == 0) save();
      if (comm.any(stop_requested())) {
        save();
        progress.finish();
        log.info("stop requested: checkpoint saved at step " + std::to_string(position.global_step) +
                 "; continue with --resume");
        write_summary("interrupted", images_per_second);
        return kInterruptedExitCode;
      }
    }
    position = {epoch + 1, 0, position.global_step, world};
    if (cfg.train.checkpoint_every == 0) save();
    if ((epoch + 1) % cfg.eval.every == 0 || epoch + 1 == cfg.train.epochs) run_evaluation(epoch + 1, position.global_step);
  }
  progress.finish();

  if (root) {
    checkpoint::write_state_dict(spec.run_dir + "/trained.pth", trainable);
    for (const auto& [name, before] : pretrained_sigma) {
      auto hook = std::dynamic_pointer_cast<methods::SvdReparamHook>(
          methods::select_layers(sam, {name}).front().layer->hook());
      const auto after = hook->reparam()->sigma.detach().cpu().to(torch::kDouble);
      const auto b = before.to(torch::kDouble);
      log.record({{"type", "sigma"}, {"layer", name},
                  {"pretrained", std::vector<double>(b.data_ptr<double>(), b.data_ptr<double>() + b.numel())},
                  {"learned", std::vector<double>(after.data_ptr<double>(), after.data_ptr<double>() + after.numel())}});
    }
  }
  write_summary("completed", images_per_second);
  if (const auto& cache = trunk_caches.train)
    log.info("trunk cache (train, rank " + std::to_string(rank) + "): " + std::to_string(cache->hits()) + " hits, " +
             std::to_string(cache->misses()) + " misses, " + std::to_string(cache->entries()) + " images cached");
  log.info("run " + spec.run_id + " completed");
  return 0;
}

}  // namespace sparser::train

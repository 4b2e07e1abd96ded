#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <set>
#include <sstream>

#include "checkpoint/state_dict.h"
#include "data/distributed_sampler.h"
#include "data/prefetcher.h"
#include "distributed/gradient_buffer.h"
#include "methods/parser.h"
#include "train/evaluate.h"
#include "train/examples.h"
#include "train/model_setup.h"
#include "train/provenance.h"
#include "train/run_log.h"
#include "train/run_summary.h"
#include "train/stop_signal.h"
#include "train/training_state.h"
#include "train/training_step.h"
#include "train/trunk_cache_setup.h"
#include "util/atomic_file.h"
#include "util/seeded_rng.h"

namespace fs = std::filesystem;

namespace sparser::train {

namespace {

using Clock = std::chrono::steady_clock;

// Keeps the model's noise (TrainingExample::noise_seed) apart from the data pipeline's
// stream, which is seeded from the same run seed, epoch and sample.
constexpr uint64_t kModelNoiseStream = 1;

// The lines of `before` that `after` lacks and the other way round: "was 'a', 'b'; now 'c'".
std::string changed_lines(const std::string& before, const std::string& after) {
  const auto lines = [](const std::string& text) {
    std::set<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.insert(line);
    return out;
  };
  const auto only_in = [](const std::set<std::string>& a, const std::set<std::string>& b) {
    std::string listed;
    for (const auto& line : a)
      if (!b.count(line)) listed += (listed.empty() ? "'" : ", '") + line + "'";
    return listed;
  };
  const auto was = lines(before), now = lines(after);
  return "was " + only_in(was, now) + "; now " + only_in(now, was);
}

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

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

// `class_names` ({"<id>": "<name>"}, the manifest's): per-class scores go by name, as
// tables ask for them ("per_class_dsc.liver"); by id where a class has none (or shares it).
nlohmann::json metrics_json(const EvalResult& r, const config::EvalSection& eval, const nlohmann::json& class_names) {
  nlohmann::json m;
  for (const auto& name : eval.metrics) m[name] = name == "miou" ? r.miou : name == "f1" ? r.f1 : r.dsc;
  if (eval.per_class) {
    nlohmann::json per_class = nlohmann::json::object();
    for (const auto& [cls, dsc] : r.per_class_dsc) {
      const auto id = std::to_string(cls);
      const bool named = class_names.is_object() && class_names.contains(id) && class_names[id].is_string();
      const auto name = named ? class_names[id].get<std::string>() : id;
      per_class[per_class.contains(name) ? id : name] = dsc;
    }
    m["per_class_dsc"] = per_class;
  }
  return m;
}

bool evaluation_due(const config::RunConfig& cfg, int64_t completed_epochs) {
  return completed_epochs % cfg.eval.every == 0 || completed_epochs == cfg.train.epochs;
}

// The learned σ of every PARSER layer next to its pretrained values, for the analysis
// tool's reconstruction figures.
class SigmaRecord {
 public:
  explicit SigmaRecord(const std::vector<methods::NamedLayer>& layers) {
    for (const auto& [name, layer] : layers)
      if (auto parser = std::dynamic_pointer_cast<methods::SvdReparamHook>(layer->hook()))
        layers_.push_back({name, parser, parser->reparam()->sigma.detach().cpu().to(torch::kDouble).clone()});
  }
  void write(RunLog& log) const {
    auto values = [](const torch::Tensor& t) { return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel()); };
    for (const auto& l : layers_)
      log.record({{"type", "sigma"}, {"layer", l.name}, {"pretrained", values(l.pretrained)},
                  {"learned", values(l.hook->reparam()->sigma.detach().cpu().to(torch::kDouble))}});
  }

 private:
  struct Layer {
    std::string name;
    std::shared_ptr<methods::SvdReparamHook> hook;
    torch::Tensor pretrained;
  };
  std::vector<Layer> layers_;
};

}  // namespace

torch::Device choose_device(const std::string& setting, torch::Device accelerator,
                            const std::string& setting_text) {
  if (setting == "cpu") return torch::kCPU;
  if (setting == "cuda" && !accelerator.is_cuda())
    throw std::invalid_argument(setting_text + ": this build has no CUDA LibTorch, or no GPU is visible");
  return accelerator;
}

int train_run(const RunSpec& spec, distributed::Environment& env, distributed::Communicator& comm,
              const RunOptions& options, Position& reached) {
  const auto session_start = Clock::now();
  const auto& cfg = spec.config;
  const bool root = env.is_root();
  const auto rank = env.rank(), world = env.world_size();
  if (root) fs::create_directories(spec.run_dir);
  comm.barrier();
  RunLog log(spec.run_dir, root);
  if (root) util::write_file_atomically(spec.run_dir + "/config.toml", config::to_toml(cfg));
  const auto device = choose_device(cfg.run.device, env);
  if (device.is_cpu() && !blas_is_optimised())
    log.info("warning: LibTorch's BLAS is " + blas_library() + "; install libopenblas0-openmp (scripts/install_deps.sh)");

  // Same seed on every rank; rank 0's values are broadcast anyway.
  torch::manual_seed(static_cast<uint64_t>(spec.seed));
  auto setup = build_model(cfg.model, cfg.method);
  auto& sam = *setup.sam;
  sam.to(device);
  const auto trainable = methods::trainable_parameters(sam);
  const auto counts = methods::count_trainable(sam);
  RunSummary summary(spec);
  summary.set_trainable(counts);
  log.info("run " + spec.run_id + ": method " + methods::to_string(cfg.method.name) + ", " +
           std::to_string(counts.total) + " trainable parameters, " + std::to_string(world) + " rank(s) × " +
           std::to_string(cfg.train.images_per_step) + " image(s) per step, device " +
           device.str() + ", " + std::to_string(torch::get_num_threads()) + " thread(s) per rank, precision " +
           cfg.train.precision + (cfg.train.precision == "bf16" ? " (image encoder; decoder and loss fp32)" : ""));

  std::optional<data::ShardDataset> val;
  if (!cfg.data.val.empty()) val.emplace(cfg.data.val);
  // Evaluating nothing would record every metric as 0, after the whole training.
  if (val && std::all_of(val->manifest().shards.begin(), val->manifest().shards.end(),
                         [](const data::ManifestShard& shard) { return shard.num_instances == 0; }))
    throw std::runtime_error(cfg.data.val + ": the evaluation split has no instances");
  const bool trains = config::trains(cfg);
  const auto resume_from = options.resume && trains ? latest_checkpoint(spec.run_dir) : std::nullopt;
  // Without a checkpoint the run starts from step 0: records of a session killed before its
  // first checkpoint would otherwise appear twice.
  if (!resume_from) log.start_over();
  const auto trunk_caches = open_trunk_caches(cfg, sam, val, trains, device, rank, log);
  // The registry shares a cache between the runs of a process: this run's share of its counts.
  const auto train_cache_hits = trunk_caches.train ? trunk_caches.train->hits() : 0;
  const auto train_cache_misses = trunk_caches.train ? trunk_caches.train->misses() : 0;

  Position& position = reached;
  position = Position{};
  position.world_size = world;
  // Totals for summary.json: this session's wall time on top of the earlier sessions'.
  auto totals = [&] {
    auto t = position;
    t.wall_seconds += seconds_since(session_start);
    return t;
  };
  const auto write_summary = [&](const std::string& status) {
    if (root) summary.write(status, totals(), world);
  };
  const auto class_names = val ? nlohmann::json::parse(val->manifest().class_names_json) : nlohmann::json();
  // The same on every rank: whether an evaluation is owed decides collective calls.
  std::optional<int64_t> last_evaluated_epoch;
  // Returns false when a stop was requested during the evaluation (nothing recorded).
  const auto run_evaluation = [&](int64_t epoch) {
    if (!val) return true;
    const auto result = evaluate(sam, *val, comm, rank, world, device, trunk_caches.val.get(),
                                 cfg.train.precision == "bf16", [&] { return comm.any(stop_requested()); });
    if (!result) return false;
    const auto metrics = metrics_json(*result, cfg.eval, class_names);
    log.record({{"type", "eval"}, {"epoch", epoch}, {"step", position.global_step}, {"instances", result->instances},
                {"metrics", metrics}});
    std::string line = "eval after epoch " + std::to_string(epoch) + ":";
    for (const auto& name : cfg.eval.metrics) line += " " + name + " " + std::to_string(metrics[name].get<double>());
    log.info(line);
    summary.note_evaluation(epoch, metrics);
    last_evaluated_epoch = epoch;
    return true;
  };
  const auto interrupted = [&](const std::string& where) {
    log.info("stop requested " + where + "; continue with --resume");
    write_summary("interrupted");
    return kInterruptedExitCode;
  };

  if (!trains) {
    if (!run_evaluation(0)) return interrupted("during the evaluation");
    write_summary("completed");
    return 0;
  }

  distributed::FlatGradients grads(trainable);
  comm.check_consistent(grads.layout_hash(), "the trainable tensors (names, shapes, dtypes) built from the config");
  grads.broadcast_parameters(comm);
  const SigmaRecord sigma(setup.hooked_layers);
  auto optimizer = make_optimizer(trainable, cfg.train);

  const data::ShardDataset train_set(cfg.data.train);
  const auto train_data = data::contents_identity(train_set.manifest());
  if (resume_from) {
    position = load_checkpoint(*resume_from, sam, *optimizer);
    if (position.world_size != world)
      throw RunRefused(*resume_from + ": saved with " + std::to_string(position.world_size) +
                       " rank(s); resume with the same number (now " + std::to_string(world) + ")");
    // A position means nothing in other samples (the split prepared again while the run was stopped).
    if (!position.train_data.empty() && position.train_data != train_data)
      throw RunRefused(cfg.data.train + " holds other samples than the split " + *resume_from + " was trained on " +
                       "(prepared again since?): " + changed_lines(position.train_data, train_data) +
                       "; restore that split, or start the run over (--force)");
    for (const auto& record : log.rewind(position.global_step))
      if (record.value("type", "") == "eval") {
        summary.note_evaluation(record["epoch"].get<int64_t>(), record["metrics"]);
        last_evaluated_epoch = record["epoch"].get<int64_t>();
      }
    // Only rank 0 reads the log back; the other ranks take its word (a rank that skipped an
    // evaluation the others ran would meet them in different collectives).
    const double rank0_logged = root ? double(last_evaluated_epoch.value_or(-1)) : 0.0;
    const auto logged = static_cast<int64_t>(comm.allreduce_sum(rank0_logged));
    if (logged >= 0) last_evaluated_epoch = logged;
    log.info("resumed from " + *resume_from + " at epoch " + std::to_string(position.epoch) + ", step " +
             std::to_string(position.step_in_epoch));
    // An evaluation the stopped session owed (its epoch's checkpoint comes first).
    if (position.step_in_epoch == 0 && position.epoch > 0 && evaluation_due(cfg, position.epoch) &&
        last_evaluated_epoch != position.epoch && !run_evaluation(position.epoch))
      return interrupted("during the evaluation");
  }

  position.train_data = train_data;
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
  TrainingStep training_step(sam, grads, *optimizer, comm, cfg.train, device, trunk_caches.train.get());
  if (!training_step.unreached().empty()) {
    std::string names;
    for (const auto& [name, tensor] : training_step.unreached()) names += (names.empty() ? "" : ", ") + name;
    log.info("the loss does not reach " + std::to_string(training_step.unreached().size()) +
             " trainable tensors, which the optimiser therefore leaves as they are (as PyTorch's does): " + names);
  }
  Progress progress(total_steps, position.global_step, root, options.progress);
  const auto save = [&] {
    if (root) {
      auto state = position;
      state.wall_seconds = totals().wall_seconds;
      save_checkpoint(spec.run_dir, trainable, *optimizer, state);
    }
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
        if (sample->instances.empty()) continue;
        examples.push_back(to_training_example(*sample, sam.config()));
        examples.back().noise_seed = util::SeededRng({static_cast<uint64_t>(spec.seed), static_cast<uint64_t>(epoch),
                                                      static_cast<uint64_t>(sample->index), kModelNoiseStream})
                                         .next();
      }
      const double lr = learning_rate(cfg.train, position.global_step, total_steps, epoch);
      const auto trained = training_step.run(
          examples, lr, "epoch " + std::to_string(epoch + 1) + ", step " + std::to_string(position.global_step + 1));
      const double seconds = seconds_since(step_start);
      position.global_step += 1;
      position.epoch = epoch;
      position.step_in_epoch = step + 1;
      position.trained_images += trained.images;
      position.training_seconds += seconds;

      const double images_per_second = static_cast<double>(trained.images) / seconds;
      if (position.global_step % cfg.run.log_every == 0 || position.global_step == total_steps) {
        nlohmann::json record{{"type", "step"}, {"epoch", epoch}, {"step", position.global_step},
                              {"images", trained.images}, {"lr", lr}, {"images_per_second", images_per_second}};
        if (trained.loss) record["loss"] = *trained.loss;
        log.record(record);
      }
      progress.update(position.global_step, epoch + 1, trained.loss, images_per_second);
      if (cfg.train.checkpoint_every > 0 && position.global_step % cfg.train.checkpoint_every == 0) save();
      if (comm.any(stop_requested())) {
        save();
        progress.finish();
        return interrupted("at step " + std::to_string(position.global_step) + ": checkpoint saved");
      }
    }
    position.epoch = epoch + 1;
    position.step_in_epoch = 0;
    if (cfg.train.checkpoint_every == 0) save();
    // A checkpoint saved at an epoch's last step (checkpoint_every) comes before the epoch's
    // evaluation: a session resumed from it keeps an evaluation already recorded.
    if (evaluation_due(cfg, epoch + 1) && last_evaluated_epoch != epoch + 1) {
      progress.finish();
      // The checkpoint of this epoch is saved: a resumed run owes only this evaluation.
      if (!run_evaluation(epoch + 1)) {
        if (cfg.train.checkpoint_every > 0) save();
        return interrupted("during the evaluation after epoch " + std::to_string(epoch + 1));
      }
    }
  }
  progress.finish();

  if (root) {
    checkpoint::write_state_dict(spec.run_dir + "/trained.pth", trainable);
    sigma.write(log);
  }
  write_summary("completed");
  if (const auto& cache = trunk_caches.train)
    log.info("trunk cache (train, rank " + std::to_string(rank) + "): " +
             std::to_string(cache->hits() - train_cache_hits) + " hits, " +
             std::to_string(cache->misses() - train_cache_misses) + " misses in this run, " +
             std::to_string(cache->entries()) + " images cached" + (cache->disabled() ? " (off after a failure)" : ""));
  log.info("run " + spec.run_id + " completed");
  return 0;
}

}  // namespace sparser::train

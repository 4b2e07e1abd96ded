#include "train/run_summary.h"

#include <sstream>

#include "config/method_section.h"

#include "train/provenance.h"
#include "train/trainer.h"
#include "util/atomic_file.h"

namespace sparser::train {

namespace {
// The [method] table of the resolved config, as JSON.
nlohmann::json method_json(const methods::MethodConfig& method) {
  std::ostringstream text;
  text << toml::json_formatter{config::method_table(method)};
  return nlohmann::json::parse(text.str());
}
}  // namespace

RunSummary::RunSummary(const RunSpec& spec)
    : run_dir_(spec.run_dir),
      primary_metric_(spec.config.eval.metrics.front()),
      images_per_step_(spec.config.train.images_per_step) {
  identity_ = {{"schema", 1},
               {"run_id", spec.run_id},
               {"experiment", spec.config.run.name},
               {"dataset", spec.config.run.dataset},
               {"seed", spec.seed},
               {"seeds", spec.configured_seeds},
               {"group", spec.group},
               {"method", method_json(spec.config.method)}};
}

void RunSummary::set_trainable(const methods::TrainableCount& count) {
  trainable_ = {{"total", count.total}, {"by_module", count.by_module}, {"by_kind", count.by_kind}};
}

void RunSummary::note_evaluation(int64_t epoch, const nlohmann::json& metrics) {
  final_ = metrics;
  if (best_.empty() || metrics.at(primary_metric_).get<double>() > best_.at(primary_metric_).get<double>()) {
    best_ = metrics;
    best_["epoch"] = epoch;
  }
}

void RunSummary::write(const std::string& status, const Position& totals, int64_t world_size,
                       const std::string& error) const {
  auto summary = identity_;
  summary.update(provenance());
  summary.update({{"status", status},
                  {"error", error},
                  {"world_size", world_size},
                  {"global_batch", world_size * images_per_step_},
                  {"trainable", trainable_},
                  {"final", final_},
                  {"best", best_},
                  {"global_step", totals.global_step},
                  {"trained_images", totals.trained_images},
                  {"train_images_per_second",
                   totals.training_seconds > 0 ? static_cast<double>(totals.trained_images) / totals.training_seconds : 0.0},
                  {"wall_time_seconds", totals.wall_seconds}});
  util::write_file_atomically(run_dir_ + "/summary.json", summary.dump(2) + "\n");
}

}  // namespace sparser::train

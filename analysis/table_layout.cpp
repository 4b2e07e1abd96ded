#include "table_layout.h"

#include <algorithm>
#include <set>
#include <stdexcept>
#include <tuple>

#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include "config/config_change.h"
#include "config/toml_section.h"

namespace sparser::analysis {
namespace {

// The swept keys that set summary.json's dataset and experiment, which the columns tell
// apart. Every other swept key, data.* settings such as data.box_jitter included, is a
// setting of the row: dropping it would average different configurations as seeds.
bool is_column_key(const std::string& key) { return key == "run.dataset" || key == "run.name"; }

std::string last_component(const std::string& key) {
  const auto dot = key.rfind('.');
  return dot == std::string::npos ? key : key.substr(dot + 1);
}

std::string derived_row_name(const std::map<std::string, std::string>& identity) {
  auto method = identity.find("method.name");
  std::string name = method != identity.end() ? method->second : "";
  std::string details;
  for (const auto& [key, value] : identity) {
    if (key == "method.name") continue;
    details += (details.empty() ? "" : ", ") + last_component(key) + "=" + value;
  }
  if (name.empty()) return details.empty() ? "runs" : details;
  return details.empty() ? name : name + " (" + details + ")";
}

std::string describe(const std::map<std::string, std::string>& identity) {
  std::string text;
  for (const auto& [key, value] : identity) text += (text.empty() ? "" : ", ") + key + "=" + value;
  return "{" + text + "}";
}

std::vector<std::string> ordered_metric_keys(const std::set<std::string>& present) {
  std::vector<std::string> keys;
  for (const char* preferred : {"miou", "f1", "dsc"})
    if (present.count(preferred)) keys.emplace_back(preferred);
  for (const auto& key : present)
    if (std::find(keys.begin(), keys.end(), key) == keys.end() && key.rfind("per_class_dsc.", 0) != 0)
      keys.push_back(key);
  return keys;
}

[[noreturn]] void layout_error(const std::filesystem::path& path, const std::string& what) {
  throw std::runtime_error(path.string() + ": " + what);
}

// A typo in a key would otherwise be ignored silently (an "experiment" filter that
// filters nothing), so every table of the layout accepts only its known keys.
void reject_unknown_keys(const toml::table& table, std::initializer_list<const char*> known,
                         const std::filesystem::path& path, const std::string& where) {
  for (const auto& [key, value] : table) {
    const bool is_known = std::any_of(known.begin(), known.end(), [&](const char* k) { return key.str() == k; });
    if (is_known) continue;
    std::string listed;
    for (const char* k : known) listed += (listed.empty() ? "" : ", ") + std::string(k);
    layout_error(path, where + ": unknown key '" + std::string(key.str()) + "' (known: " + listed + ")");
  }
}

std::string required_string(const toml::table& table, const char* key, const std::filesystem::path& path,
                            const std::string& where) {
  auto value = table[key].value<std::string>();
  if (!value) layout_error(path, where + " needs a string '" + key + "'");
  return *value;
}

int parse_decimals(const toml::node_view<const toml::node>& node, int fallback, const std::filesystem::path& path,
                   const std::string& where) {
  if (!node) return fallback;
  const auto value = node.value<int64_t>();
  if (!value || *value < 0 || *value > 6) layout_error(path, where + ".decimals must be an integer in 0..6");
  return static_cast<int>(*value);
}

// unit = "percent" (×100, the default of final metrics), "K" or "M" (÷1024 or ÷1024²,
// as the paper counts parameters) or "none" (as stored, the default of summary fields).
double parse_unit(const toml::table& entry, MetricSource source, const std::filesystem::path& path,
                  const std::string& where) {
  const std::string unit = entry["unit"].value_or(std::string(source == MetricSource::kFinal ? "percent" : "none"));
  if (unit == "percent") return 100.0;
  if (unit == "K") return 1.0 / 1024.0;
  if (unit == "M") return 1.0 / (1024.0 * 1024.0);
  if (unit == "none") return 1.0;
  layout_error(path, where + ".unit must be percent, K, M or none (got '" + unit + "')");
}

BestRule parse_best(const toml::table& entry, const std::filesystem::path& path, const std::string& where) {
  const std::string best = entry["best"].value_or(std::string("highest"));
  if (best == "highest") return BestRule::kHighest;
  if (best == "lowest") return BestRule::kLowest;
  if (best == "none") return BestRule::kNone;
  layout_error(path, where + ".best must be highest, lowest or none (got '" + best + "')");
}

// A metric is a final-metric key ("miou") or a table naming a final metric or a
// summary.json number: { summary = "trainable.total", name = "Params (K)", unit = "K" }.
MetricSpec parse_metric(const toml::node& node, const std::filesystem::path& path, const std::string& where) {
  MetricSpec metric;
  if (auto key = node.value<std::string>()) {
    metric.key = *key;
    metric.name = default_metric_name(*key);
    return metric;
  }
  const auto* entry = node.as_table();
  if (!entry) layout_error(path, where + " must be a string or a table");
  reject_unknown_keys(*entry, {"final", "summary", "name", "unit", "std", "best", "decimals"}, path, where);
  const auto final_key = (*entry)["final"].value<std::string>();
  const auto summary_key = (*entry)["summary"].value<std::string>();
  if (final_key.has_value() == summary_key.has_value())
    layout_error(path, where + " needs exactly one of 'final' (a metric key) or 'summary' (a summary.json path)");
  metric.source = final_key ? MetricSource::kFinal : MetricSource::kSummary;
  metric.key = final_key ? *final_key : *summary_key;
  metric.name = (*entry)["name"].value_or(final_key ? default_metric_name(metric.key) : metric.key);
  metric.scale = parse_unit(*entry, metric.source, path, where);
  metric.show_std = (*entry)["std"].value_or(true);
  metric.best = parse_best(*entry, path, where);
  metric.decimals = parse_decimals((*entry)["decimals"], -1, path, where);
  return metric;
}

ColumnGroup parse_column_group(const toml::table& entry, const std::filesystem::path& path, size_t index) {
  const std::string where = "columns[" + std::to_string(index) + "]";
  reject_unknown_keys(entry, {"dataset", "experiment", "name", "metrics", "metric_names"}, path, where);
  ColumnGroup group;
  group.dataset = required_string(entry, "dataset", path, where);
  group.experiment = entry["experiment"].value_or(std::string());
  group.name = entry["name"].value_or(group.dataset);
  const auto* metrics = entry["metrics"].as_array();
  if (!metrics || metrics->empty()) layout_error(path, where + " needs a non-empty array 'metrics'");
  const auto* names = entry["metric_names"].as_array();
  if (names && names->size() != metrics->size())
    layout_error(path, where + ": 'metric_names' must have one entry per metric");
  for (size_t i = 0; i < metrics->size(); ++i) {
    MetricSpec metric = parse_metric((*metrics)[i], path, where + ".metrics[" + std::to_string(i) + "]");
    if (names) metric.name = (*names)[i].value_or(metric.name);
    group.metrics.push_back(metric);
  }
  return group;
}

RowSpec parse_row(const toml::table& entry, const std::filesystem::path& path, size_t index) {
  const std::string where = "rows[" + std::to_string(index) + "]";
  reject_unknown_keys(entry, {"name", "match", "rule_above"}, path, where);
  RowSpec row;
  row.name = required_string(entry, "name", path, where);
  row.rule_above = entry["rule_above"].value_or(false);
  const auto* match = entry["match"].as_table();
  if (!match || match->empty()) layout_error(path, where + " needs a non-empty table 'match'");
  for (const auto& [key, value] : *match) {
    // Numbers are matched by their JSON text, as summary.json holds them (3e-4 as 0.0003).
    const std::string name(key.str());
    if (auto text = value.value_exact<std::string>()) row.match[name] = *text;
    else if (auto integer = value.value_exact<int64_t>()) row.match[name] = nlohmann::json(*integer).dump();
    else if (auto number = value.value_exact<double>()) row.match[name] = nlohmann::json(*number).dump();
    else if (auto boolean = value.value_exact<bool>()) row.match[name] = *boolean ? "true" : "false";
    else layout_error(path, where + ".match." + name + ": use a string, number or boolean");
  }
  return row;
}

std::vector<int> parse_seeds(const toml::table& table, const std::filesystem::path& path) {
  std::vector<int> seeds;
  if (!table.contains("seeds")) return seeds;
  const auto* list = table["seeds"].as_array();
  if (!list) layout_error(path, "table.seeds must be an array of integers");
  for (const auto& seed : *list) {
    const auto value = seed.value<int64_t>();
    if (!value) layout_error(path, "table.seeds must be an array of integers");
    seeds.push_back(static_cast<int>(*value));
  }
  return seeds;
}

}  // namespace

std::map<std::string, std::string> row_identity(const RunRecord& run) {
  std::map<std::string, std::string> identity;
  for (const auto& [key, value] : run.group)
    if (!is_column_key(key)) identity.emplace(key, value);
  return identity;
}

bool column_matches(const ColumnGroup& group, const RunRecord& run) {
  return run.dataset == group.dataset && (group.experiment.empty() || run.experiment == group.experiment);
}

RunBatch batch_of(const RunRecord& run) {
  const auto value = [&](const char* key) -> std::optional<int64_t> {
    const auto found = run.summary_values.find(key);
    if (found == run.summary_values.end()) return std::nullopt;
    return static_cast<int64_t>(found->second);
  };
  return {value("global_batch"), value("world_size")};
}

std::string describe(const RunBatch& batch) {
  const std::string ranks = batch.world_size ? std::to_string(*batch.world_size) + " rank(s)" : "? rank(s)";
  if (batch.global_batch) return "batch " + std::to_string(*batch.global_batch) + " on " + ranks;
  return batch.world_size ? ranks : "";
}

// Seeds of one group trained under configs that differ beyond the seed (the config edited
// between two submissions) would be averaged as one configuration. sparser_run's own rule
// decides what differs (config::result_changes), as for runs from other machines: file
// paths and keys only one config has (written by another sparser version) are not compared.
void check_one_config(const CellRuns& selected, const RowSpec& row, const ColumnGroup& column) {
  const RunRecord* reference = nullptr;
  for (const auto& [seed, run] : selected.completed_by_seed) {
    if (!run->config) continue;
    if (!reference) {
      reference = run;
      continue;
    }
    const auto changes = config::result_changes(*reference->config, *run->config, config::Comparison::kAcrossMachines);
    if (changes.empty()) continue;
    std::string listed;
    for (const auto& change : changes) listed += "\n  " + change;
    throw std::runtime_error("row '" + row.name + "' on dataset '" + column.dataset + "': " +
                             (reference->dir / "config.toml").string() + " and " +
                             (run->dir / "config.toml").string() +
                             " differ beyond the seed, so their runs must not be averaged as seeds; rerun the "
                             "stale seeds under the current config (sparser_run --force) or leave them out:" +
                             listed);
  }
}

CellRuns select_cell_runs(const std::vector<RunRecord>& runs, const RowSpec& row, const ColumnGroup& column) {
  CellRuns selected;
  // The configurations (experiment, row identity, batch) the runs come from, each with one of its runs.
  using Configuration = std::tuple<std::string, std::map<std::string, std::string>, std::string>;
  std::map<Configuration, const RunRecord*> configurations;
  for (const auto& run : runs) {
    if (!column_matches(column, run) || !row_matches(row, run)) continue;
    configurations.emplace(Configuration{run.experiment, row_identity(run), describe(batch_of(run))}, &run);
    selected.experiment = run.experiment;
    selected.expected_seeds.insert(run.configured_seeds.begin(), run.configured_seeds.end());
    selected.expected_seeds.insert(run.seed);
    if (!run.completed()) {
      selected.exclusions.push_back("excluded " + run.run_id + " (" + (run.status.empty() ? "no status" : run.status) +
                                    (run.error.empty() ? "" : ": " + run.error) + ")");
      continue;
    }
    // Two runs of one seed usually share their run id (a copied or older run directory),
    // so only their directories tell them apart.
    auto [taken, inserted] = selected.completed_by_seed.emplace(run.seed, &run);
    if (!inserted)
      selected.exclusions.push_back("excluded " + run.dir.string() + " (seed " + std::to_string(run.seed) +
                                    " already taken from " + taken->second->dir.string() + ")");
  }
  if (configurations.size() > 1) {
    std::set<std::string> experiments, batches;
    std::set<std::map<std::string, std::string>> identities;
    std::string listed;
    for (const auto& [configuration, example] : configurations) {
      const auto& [experiment, identity, batch] = configuration;
      experiments.insert(experiment);
      identities.insert(identity);
      batches.insert(batch);
      listed += "\n  experiment '" + experiment + "' " + describe(identity) + (batch.empty() ? "" : ", " + batch) +
                ", e.g. " + example->dir.string();
    }
    std::string remedy = identities.size() > 1 ? "make its match more specific" : "";
    if (experiments.size() > 1) remedy += (remedy.empty() ? "" : " and ") + std::string("name the column's experiment");
    if (identities.size() == 1 && experiments.size() == 1 && batches.size() > 1)
      remedy = "train them with one batch (train.images_per_step is per rank: run them on one rank count)";
    throw std::runtime_error("row '" + row.name + "' matches several groups on dataset '" + column.dataset +
                             "', which must not be averaged as seeds; " + remedy + ":" + listed);
  }
  check_one_config(selected, row, column);
  return selected;
}

std::optional<double> metric_value(const RunRecord& run, const MetricSpec& metric) {
  const auto& values = metric.source == MetricSource::kFinal ? run.final_metrics : run.summary_values;
  const auto found = values.find(metric.key);
  if (found == values.end()) return std::nullopt;
  return found->second * metric.scale;
}

bool row_matches(const RowSpec& row, const RunRecord& run) {
  const auto identity = row_identity(run);
  if (row.match_exactly) return identity == row.match;
  for (const auto& [key, value] : row.match) {
    auto found = run.group.find(key);
    if (found == run.group.end() || found->second != value) return false;
  }
  return true;
}

std::string default_metric_name(const std::string& key) {
  static const std::map<std::string, std::string> known = {{"miou", "mIoU"}, {"f1", "F1"}, {"dsc", "DSC"}};
  if (auto found = known.find(key); found != known.end()) return found->second;
  const std::string per_class = "per_class_dsc.";
  if (key.rfind(per_class, 0) == 0) return key.substr(per_class.size()) + " DSC";
  return key;
}

TableLayout load_layout(const std::filesystem::path& path) {
  const toml::table document = config::parse_toml_file(path.string());  // errors name the line of a syntax error
  reject_unknown_keys(document, {"table", "columns", "rows"}, path, "the layout");
  TableLayout layout;
  if (const auto* table = document["table"].as_table()) {
    reject_unknown_keys(*table, {"caption", "label", "row_header", "baseline", "decimals", "seeds", "global_batch"},
                        path, "table");
    layout.caption = (*table)["caption"].value_or(std::string());
    layout.label = (*table)["label"].value_or(std::string());
    layout.row_header = (*table)["row_header"].value_or(layout.row_header);
    layout.baseline = (*table)["baseline"].value_or(std::string());
    layout.decimals = parse_decimals((*table)["decimals"], layout.decimals, path, "table");
    layout.seeds = parse_seeds(*table, path);
    if (table->contains("global_batch")) {
      const auto batch = (*table)["global_batch"].value<int64_t>();
      if (!batch || *batch < 1) layout_error(path, "table.global_batch must be an integer of at least 1");
      layout.global_batch = *batch;
    }
  }
  const auto* columns = document["columns"].as_array();
  const auto* rows = document["rows"].as_array();
  if (!columns || columns->empty()) layout_error(path, "needs at least one [[columns]] entry");
  if (!rows || rows->empty()) layout_error(path, "needs at least one [[rows]] entry");
  for (size_t i = 0; i < columns->size(); ++i) {
    const auto* entry = (*columns)[i].as_table();
    if (!entry) layout_error(path, "columns must be tables ([[columns]])");
    layout.columns.push_back(parse_column_group(*entry, path, i));
  }
  for (size_t i = 0; i < rows->size(); ++i) {
    const auto* entry = (*rows)[i].as_table();
    if (!entry) layout_error(path, "rows must be tables ([[rows]])");
    layout.rows.push_back(parse_row(*entry, path, i));
  }
  return layout;
}

TableLayout derive_layout(const std::vector<RunRecord>& runs) {
  TableLayout layout;
  std::set<std::map<std::string, std::string>> identities;
  // Columns by dataset and experiment: the runs of two configs on one dataset (coco.toml
  // and efficiency.toml train differently) must not fill in each other's seeds.
  std::map<std::pair<std::string, std::string>, std::set<std::string>> metrics_by_column;
  std::map<std::string, int> experiments_on_dataset;
  for (const auto& run : runs) {
    identities.insert(row_identity(run));
    auto [column, inserted] = metrics_by_column.try_emplace({run.dataset, run.experiment});
    if (inserted) ++experiments_on_dataset[run.dataset];
    for (const auto& [key, value] : run.final_metrics) column->second.insert(key);
  }
  for (const auto& identity : identities) {
    RowSpec row;
    row.name = derived_row_name(identity);
    row.match = identity;
    row.match_exactly = true;
    layout.rows.push_back(row);
  }
  std::sort(layout.rows.begin(), layout.rows.end(),
            [](const RowSpec& a, const RowSpec& b) { return a.name < b.name; });
  std::set<std::string> all_metrics;
  for (const auto& [column, present] : metrics_by_column) all_metrics.insert(present.begin(), present.end());
  if (ordered_metric_keys(all_metrics).empty()) throw std::runtime_error("no completed run has final metrics");
  for (const auto& [column, present] : metrics_by_column) {
    const auto& [dataset, experiment] = column;
    const bool shared = experiments_on_dataset[dataset] > 1;
    ColumnGroup group{dataset, experiment, shared ? dataset + " (" + experiment + ")" : dataset, {}};
    // A column whose runs all failed still gets metrics, so its failures show up as flagged cells.
    for (const auto& key : ordered_metric_keys(present.empty() ? all_metrics : present))
      group.metrics.push_back({key, default_metric_name(key)});
    layout.columns.push_back(group);
  }
  return layout;
}

}  // namespace sparser::analysis

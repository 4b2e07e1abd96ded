#include "table_layout.h"

#include <algorithm>
#include <set>
#include <stdexcept>

#include <toml++/toml.h>

namespace sparser::analysis {
namespace {

bool is_dataset_key(const std::string& key) {
  return key == "dataset" || key == "experiment" || key.rfind("data.", 0) == 0;
}

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

std::string required_string(const toml::table& table, const char* key, const std::filesystem::path& path,
                            const std::string& where) {
  auto value = table[key].value<std::string>();
  if (!value) layout_error(path, where + " needs a string '" + key + "'");
  return *value;
}

ColumnGroup parse_column_group(const toml::table& entry, const std::filesystem::path& path, size_t index) {
  const std::string where = "columns[" + std::to_string(index) + "]";
  ColumnGroup group;
  group.dataset = required_string(entry, "dataset", path, where);
  group.name = entry["name"].value_or(group.dataset);
  const auto* metrics = entry["metrics"].as_array();
  if (!metrics || metrics->empty()) layout_error(path, where + " needs a non-empty array 'metrics'");
  const auto* names = entry["metric_names"].as_array();
  if (names && names->size() != metrics->size())
    layout_error(path, where + ": 'metric_names' must have one entry per metric");
  for (size_t i = 0; i < metrics->size(); ++i) {
    auto key = (*metrics)[i].value<std::string>();
    if (!key) layout_error(path, where + ": metrics must be strings");
    std::string name = names ? (*names)[i].value_or(std::string()) : default_metric_name(*key);
    group.metrics.push_back({*key, name});
  }
  return group;
}

RowSpec parse_row(const toml::table& entry, const std::filesystem::path& path, size_t index) {
  const std::string where = "rows[" + std::to_string(index) + "]";
  RowSpec row;
  row.name = required_string(entry, "name", path, where);
  row.rule_above = entry["rule_above"].value_or(false);
  const auto* match = entry["match"].as_table();
  if (!match || match->empty()) layout_error(path, where + " needs a non-empty table 'match'");
  for (const auto& [key, value] : *match) {
    // Numbers are matched by their JSON text, as the trainer writes them.
    if (auto text = value.value<std::string>()) row.match[std::string(key.str())] = *text;
    else if (auto integer = value.value<int64_t>()) row.match[std::string(key.str())] = std::to_string(*integer);
    else if (auto boolean = value.value<bool>()) row.match[std::string(key.str())] = *boolean ? "true" : "false";
    else layout_error(path, where + ".match." + std::string(key.str()) + ": use a string, integer or boolean");
  }
  return row;
}

}  // namespace

std::map<std::string, std::string> row_identity(const RunRecord& run) {
  std::map<std::string, std::string> identity;
  for (const auto& [key, value] : run.group)
    if (!is_dataset_key(key)) identity.emplace(key, value);
  return identity;
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
  toml::table document;
  try {
    document = toml::parse_file(path.string());
  } catch (const toml::parse_error& e) {
    layout_error(path, std::string(e.description()));
  }
  TableLayout layout;
  if (const auto* table = document["table"].as_table()) {
    layout.caption = (*table)["caption"].value_or(std::string());
    layout.label = (*table)["label"].value_or(std::string());
    layout.row_header = (*table)["row_header"].value_or(layout.row_header);
    layout.baseline = (*table)["baseline"].value_or(std::string());
    layout.decimals = (*table)["decimals"].value_or(layout.decimals);
    if (layout.decimals < 0 || layout.decimals > 6) layout_error(path, "table.decimals must be in 0..6");
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
  std::map<std::string, std::set<std::string>> metrics_by_dataset;
  for (const auto& run : runs) {
    identities.insert(row_identity(run));
    auto& metrics = metrics_by_dataset[run.dataset];
    for (const auto& [key, value] : run.final_metrics) metrics.insert(key);
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
  for (const auto& [dataset, present] : metrics_by_dataset) all_metrics.insert(present.begin(), present.end());
  if (ordered_metric_keys(all_metrics).empty()) throw std::runtime_error("no completed run has final metrics");
  for (const auto& [dataset, present] : metrics_by_dataset) {
    ColumnGroup group{dataset, dataset, {}};
    // A dataset whose runs all failed still gets columns, so its failures show up as flagged cells.
    for (const auto& key : ordered_metric_keys(present.empty() ? all_metrics : present))
      group.metrics.push_back({key, default_metric_name(key)});
    layout.columns.push_back(group);
  }
  return layout;
}

}  // namespace sparser::analysis

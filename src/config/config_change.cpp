#include "config/config_change.h"

#include <iomanip>
#include <map>
#include <set>
#include <sstream>

namespace sparser::config {

namespace {

const std::set<std::string> kExecutionKeys{
    "run.output_dir",        "run.seeds",         "run.threads",          "run.device",
    "run.log_every",         "data.workers",      "data.prefetch",        "train.prompts_per_pass",
    "train.checkpoint_every", "train.trunk_cache", "train.trunk_cache_memory_gb",
    "train.trunk_cache_disk_gb", "train.trunk_cache_dir"};
// Where the data and the weights are: the same files may sit at other paths on another machine.
const std::set<std::string> kPathKeys{"data.train", "data.val", "model.checkpoint"};
// Whether the trunk cache is used: execution only with fp32 storage, which gives the
// uncached results exactly; fp16 storage rounds the features, so there it changes results.
const std::set<std::string> kCacheUseKeys{"train.trunk_cache", "train.trunk_cache_memory_gb",
                                          "train.trunk_cache_disk_gb"};

bool stores_fp16(const toml::table& config) {
  return config["train"]["trunk_cache_dtype"].value_or(std::string("fp32")) == "fp16";
}

// Dotted key → the value as TOML text, for every value below `table`; floating-point
// values with 15 significant digits (toml++ writes 0.003 as 0.0030000000000000001, and a
// resolved config holds nothing finer).
void flatten(const toml::table& table, const std::string& prefix, std::map<std::string, std::string>& out) {
  for (const auto& [key, node] : table) {
    const std::string dotted = prefix + std::string(key.str());
    if (const auto* inner = node.as_table()) {
      flatten(*inner, dotted + ".", out);
      continue;
    }
    std::ostringstream text;
    if (const auto* number = node.as_floating_point())
      text << std::setprecision(15) << number->get();
    else
      node.visit([&](const auto& value) { text << value; });
    out[dotted] = text.str();
  }
}

}  // namespace

std::vector<std::string> result_changes(const toml::table& stored, const toml::table& current,
                                        Comparison comparison) {
  std::map<std::string, std::string> before, after;
  flatten(stored, "", before);
  flatten(current, "", after);
  std::set<std::string> keys;
  for (const auto* values : {&before, &after})
    for (const auto& entry : *values) keys.insert(entry.first);
  std::vector<std::string> changes;
  const auto shown = [](const std::map<std::string, std::string>& values, const std::string& key) {
    const auto it = values.find(key);
    return it == values.end() ? std::string("(absent)") : it->second;
  };
  const bool fp16_cache = stores_fp16(stored) || stores_fp16(current);
  for (const auto& key : keys) {
    if (kExecutionKeys.count(key) && !(fp16_cache && kCacheUseKeys.count(key))) continue;
    if (comparison == Comparison::kAcrossMachines && (kPathKeys.count(key) || !before.count(key) || !after.count(key)))
      continue;
    const auto old_value = shown(before, key), new_value = shown(after, key);
    if (old_value != new_value) changes.push_back(key + ": " + old_value + " → " + new_value);
  }
  return changes;
}

}  // namespace sparser::config

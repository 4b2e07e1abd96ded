#include "run_record.h"

#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include "config/toml_section.h"

namespace sparser::analysis {
namespace {

using nlohmann::json;

constexpr int kSchemaVersion = 1;

json read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw std::runtime_error(path.string() + ": " + e.what());
  }
}

// Group values are usually strings, but sweeps over numbers (ranks, lrs) give
// numbers; both must become stable row keys.
std::string as_text(const json& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

// A member that should be an object; sparser_run writes null for a section it has no
// values for yet ("final" of a run stopped before its first evaluation).
json object_member(const json& parent, const char* key) {
  const auto found = parent.find(key);
  return found != parent.end() && found->is_object() ? *found : json::object();
}

std::map<std::string, double> numeric_members(const json& object) {
  std::map<std::string, double> out;
  if (!object.is_object()) return out;
  for (const auto& [key, value] : object.items())
    if (value.is_number()) out[key] = value.get<double>();
  return out;
}

// A metrics section (summary "final", an eval record's "metrics"): its numbers, with the
// per-class scores flattened to "per_class_dsc.<class>".
std::map<std::string, double> metric_values(const json& section) {
  auto values = numeric_members(section);
  for (const auto& [name, value] : numeric_members(object_member(section, "per_class_dsc")))
    values["per_class_dsc." + name] = value;
  return values;
}

// Numbers at any depth, keyed by their dotted path; arrays are not descended into.
void flatten_numbers(const json& value, const std::string& path, std::map<std::string, double>& out) {
  if (value.is_number() && !path.empty()) out[path] = value.get<double>();
  if (value.is_object())
    for (const auto& [key, member] : value.items()) flatten_numbers(member, path.empty() ? key : path + "." + key, out);
}

std::vector<double> doubles(const json& array) {
  std::vector<double> out;
  if (array.is_array())
    for (const auto& v : array) out.push_back(v.get<double>());
  return out;
}

void read_metrics_log(const std::filesystem::path& path, RunRecord& run) {
  std::ifstream in(path);
  if (!in) return;  // a run that died before logging has no metrics.jsonl
  std::string line;
  int line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json entry;
    try {
      entry = json::parse(line);
    } catch (const json::exception&) {
      // A run killed mid-write leaves a truncated last line; anything earlier is corruption.
      if (in.peek() == std::char_traits<char>::eof()) break;
      throw std::runtime_error(path.string() + ":" + std::to_string(line_number) + ": invalid JSON");
    }
    try {
      const std::string type = entry.value("type", "");
      if (type == "step" && entry.contains("loss")) {
        run.losses.push_back({entry.value("step", 0L), entry["loss"].get<double>()});
      } else if (type == "eval") {
        run.evals.push_back({entry.value("epoch", 0), metric_values(object_member(entry, "metrics"))});
      } else if (type == "sigma") {
        run.sigmas.push_back({entry.value("layer", ""), doubles(entry.value("pretrained", json::array())),
                              doubles(entry.value("learned", json::array()))});
      }
    } catch (const json::exception& e) {
      throw std::runtime_error(path.string() + ":" + std::to_string(line_number) + ": " + e.what());
    }
  }
}

}  // namespace

bool is_run_dir(const std::filesystem::path& dir) {
  return std::filesystem::is_regular_file(dir / "summary.json");
}

RunRecord load_run(const std::filesystem::path& dir) {
  const auto summary_path = dir / "summary.json";
  const json summary = read_json_file(summary_path);
  if (summary.value("schema", 0) != kSchemaVersion)
    throw std::runtime_error(summary_path.string() + ": unsupported schema " + summary.value("schema", json()).dump());

  RunRecord run;
  run.dir = dir;
  try {
    run.run_id = summary.value("run_id", dir.filename().string());
    run.experiment = summary.value("experiment", "");
    run.dataset = summary.value("dataset", run.experiment);
    run.seed = summary.value("seed", 0);
    run.status = summary.value("status", "");
    run.error = summary.value("error", "");
    const json group = object_member(summary, "group");  // iterating a temporary's items() would dangle
    for (const auto& [key, value] : group.items()) run.group[key] = as_text(value);
    run.final_metrics = metric_values(object_member(summary, "final"));
    flatten_numbers(summary, "", run.summary_values);
    for (const auto& seed : summary.value("seeds", json::array())) run.configured_seeds.push_back(seed.get<int>());
  } catch (const json::exception& e) {
    throw std::runtime_error(summary_path.string() + ": " + e.what());
  }
  read_metrics_log(dir / "metrics.jsonl", run);
  if (const auto config = dir / "config.toml"; std::filesystem::is_regular_file(config))
    run.config = std::make_shared<const toml::table>(config::parse_toml_file(config.string()));
  return run;
}

}  // namespace sparser::analysis

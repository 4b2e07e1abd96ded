#include "run_record.h"

#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>
#include <toml++/toml.h>

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

std::map<std::string, double> numeric_members(const json& object) {
  std::map<std::string, double> out;
  if (!object.is_object()) return out;
  for (const auto& [key, value] : object.items())
    if (value.is_number()) out[key] = value.get<double>();
  return out;
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
    const std::string type = entry.value("type", "");
    if (type == "step" && entry.contains("loss")) {
      run.losses.push_back({entry.value("step", 0L), entry["loss"].get<double>()});
    } else if (type == "eval") {
      run.evals.push_back({entry.value("epoch", 0), numeric_members(entry.value("metrics", json::object()))});
    } else if (type == "sigma") {
      run.sigmas.push_back({entry.value("layer", ""), doubles(entry.value("pretrained", json::array())),
                            doubles(entry.value("learned", json::array()))});
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
    const json group = summary.value("group", json::object());  // iterating a temporary's items() would dangle
    for (const auto& [key, value] : group.items()) run.group[key] = as_text(value);
    const json final_section = summary.value("final", json::object());
    run.final_metrics = numeric_members(final_section);
    for (const auto& [name, value] : numeric_members(final_section.value("per_class_dsc", json::object())))
      run.final_metrics["per_class_dsc." + name] = value;
    flatten_numbers(summary, "", run.summary_values);
    for (const auto& seed : summary.value("seeds", json::array())) run.configured_seeds.push_back(seed.get<int>());
  } catch (const json::exception& e) {
    throw std::runtime_error(summary_path.string() + ": " + e.what());
  }
  read_metrics_log(dir / "metrics.jsonl", run);
  return run;
}

}  // namespace sparser::analysis

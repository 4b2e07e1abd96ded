#include "config/sweep.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <optional>
#include <sstream>

namespace sparser::config {

namespace {

// One [sweep] entry.
struct Axis {
  std::string key;                // as written, e.g. "method.layers"
  std::vector<std::string> path;  // {"method", "layers"}
  const toml::array* values;
};

// A float as Python's repr and TOML writers print it: the shortest digits that read back
// to the same value, fixed for exponents -4..15 (3e-4 → 0.0003, 5e-5 → 5e-05, 2.0).
// toml++ prints 17 significant digits where those are needed: 0.00029999999999999997.
std::string float_text(double value) {
  if (!std::isfinite(value)) return std::isnan(value) ? "nan" : value > 0 ? "inf" : "-inf";
  char buffer[32];
  const auto end = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::scientific).ptr;
  const std::string scientific(buffer, end);  // -3.5e-04
  const auto e = scientific.find('e');
  const bool negative = scientific[0] == '-';
  std::string digits = scientific.substr(negative ? 1 : 0, e - (negative ? 1 : 0));
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  const int exponent = std::stoi(scientific.substr(e + 1));
  std::string text;
  if (exponent < -4 || exponent >= 16) {
    const auto magnitude = std::to_string(std::abs(exponent));
    text = digits.substr(0, 1) + (digits.size() > 1 ? "." + digits.substr(1) : "") + "e" +
           (exponent < 0 ? "-" : "+") + (magnitude.size() < 2 ? "0" : "") + magnitude;
  } else if (exponent < 0) {
    text = "0." + std::string(size_t(-exponent - 1), '0') + digits;
  } else {
    digits.resize(std::max(digits.size(), size_t(exponent) + 1), '0');
    const auto fraction = digits.substr(size_t(exponent) + 1);
    text = digits.substr(0, size_t(exponent) + 1) + "." + (fraction.empty() ? "0" : fraction);
  }
  return (negative ? "-" : "") + text;
}

std::string value_text(const toml::node& node) {
  if (auto s = node.value_exact<std::string>()) return *s;
  if (auto f = node.value_exact<double>()) return float_text(*f);
  // In decimal whatever the notation (0x10, 1_000), so that equal values give one id.
  if (auto i = node.value_exact<int64_t>()) return std::to_string(*i);
  if (const auto* a = node.as_array()) {
    std::string joined;
    for (const auto& element : *a) joined += (joined.empty() ? "" : "+") + value_text(element);
    return joined;
  }
  std::ostringstream out;
  node.visit([&](const auto& v) { out << v; });
  return out.str();
}

// The entry as a TOML key path: sweep.method, sweep."method.layers".
std::string entry_name(const std::string& key) {
  return key.find('.') == std::string::npos ? "sweep." + key : "sweep.\"" + key + "\"";
}

// Sets `path` in `root`, creating tables on the way. Returns the part of the path that
// is a value rather than a table (and sets nothing) when there is one.
std::optional<std::string> set_path(toml::table& root, const std::vector<std::string>& path, const toml::node& value) {
  const auto parent = key_parent(root, path);
  if (!parent.table) return parent.blocked;
  parent.table->insert_or_assign(path.back(), value);
  return std::nullopt;
}

// The first value at or inside `node` that came from a --set override.
std::optional<std::string> override_within(const toml::node& node) {
  if (auto origin = override_of(node)) return origin;
  if (const auto* table = node.as_table())
    for (const auto& [key, child] : *table)
      if (auto origin = override_within(child)) return origin;
  return std::nullopt;
}

// A --set of a key that the sweep sets (the key, a key inside it, or a table holding
// it) would be replaced in every run, and the runs' ids would hide it: an error.
void reject_overrides_of_swept_keys(const toml::table& root, const TomlSection& sweep, const std::vector<Axis>& axes) {
  for (const auto& axis : axes) {
    const toml::node* node = &root;
    for (const auto& name : axis.path) node = node && node->is_table() ? node->as_table()->get(name) : nullptr;
    if (!node) continue;
    if (auto origin = override_within(*node))
      throw ConfigError(*origin + ": the sweep sets " + axis.key + " in every run (" + sweep.where(axis.key) +
                        "), which would replace this value. Change the sweep instead: edit that entry, or override "
                        "it, e.g. --set '" + entry_name(axis.key) + "=[...]' (docs/config.md, \"--set and [sweep]\")");
  }
}

// 1 and 1.0 are one value written twice: two runs of the same config under two ids. (Equal
// texts, 1e-3 and 0.001, are left to the id check, which names the runs.)
void reject_equal_numbers(const TomlSection& sweep, const Axis& axis) {
  const auto number = [](const toml::node& n) -> std::optional<double> {
    if (n.is_integer() || n.is_floating_point()) return n.value<double>();
    return std::nullopt;
  };
  for (size_t i = 0; i < axis.values->size(); ++i)
    for (size_t j = 0; j < i; ++j) {
      const auto &first = *axis.values->get(j), &second = *axis.values->get(i);
      const auto a = number(first), b = number(second);
      if (a && b && *a == *b && value_text(first) != value_text(second))
        sweep.fail(axis.key, "entries " + std::to_string(j) + " and " + std::to_string(i) + " are the same number (" +
                                 value_text(first) + " and " + value_text(second) + ")");
    }
}

std::vector<Axis> axes_of(const toml::table& root, const TomlSection& top) {
  std::vector<Axis> axes;
  const auto* sweep = root.get("sweep");
  if (!sweep) return axes;
  if (!sweep->is_table()) top.fail("sweep", "expected a table of key = [values]");
  const TomlSection section(sweep->as_table(), top.file(), "sweep");
  for (const auto& [key, values] : *sweep->as_table()) {
    Axis axis{std::string(key.str()), split_key_path(std::string(key.str())), values.as_array()};
    if (!axis.values || axis.values->empty()) section.fail(axis.key, "expected a non-empty array of values");
    if (std::find(axis.path.begin(), axis.path.end(), "") != axis.path.end())
      section.fail(axis.key, "expected a dotted key such as \"train.lr\"");
    if (axis.key == "run.seeds") section.fail(axis.key, "seeds come from run.seeds, not the sweep");
    if (axis.path.size() == 1 && axis.key != "method")
      section.fail(axis.key, "sweep single keys of [" + axis.key + "] (\"" + axis.key +
                                 ".key\" = [...]); only [method] can be swept as whole tables");
    if (axis.path.front() == "sweep") section.fail(axis.key, "the sweep cannot set itself");
    if (axis.key == "method")
      for (const auto& value : *axis.values)
        if (!value.is_table()) section.fail(axis.key, "entries must be method tables ({ name = \"lora\", ... })");
    reject_equal_numbers(section, axis);
    axes.push_back(std::move(axis));
  }
  return axes;
}

// "key=value" fragments of a method table as written in the sweep, but its name (which
// leads the id): the id shows what the entry says (its resolved settings, defaults
// included, would make ids long and change them when a default changes).
std::vector<std::pair<std::string, std::string>> method_fragments(const toml::table& method) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [key, value] : method)
    if (key.str() != "name") out.emplace_back(std::string(key.str()), value_text(value));
  return out;
}

std::string method_name_of(const toml::table& point) {
  const auto* method = point.get("method");
  if (method && method->is_table())
    if (const auto* name = method->as_table()->get("name")) return value_text(*name);
  return "parser";  // the [method] default
}

// NAME_MAX of Linux file systems: an id is one directory name.
constexpr size_t kMaxIdBytes = 255;

// An id as one directory name: '/', '\', whitespace and control characters become '_'.
// (An id starts with the method's name, never with '.'.)
std::string safe_directory_name(std::string id) {
  for (auto& ch : id) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7f || ch == '/' || ch == '\\') ch = '_';
  }
  return id;
}

}  // namespace

std::vector<SweepRun> expand_runs(const toml::table& root, const std::string& source) {
  const TomlSection top(&root, source, "");
  const auto axes = axes_of(root, top);
  const TomlSection sweep(root.get_as<toml::table>("sweep"), source, "sweep");
  // Before the check of the file: an override meant for the sweep's runs may not fit
  // the file's own [method].
  reject_overrides_of_swept_keys(root, sweep, axes);
  // The file as written is checked next: copies of a table lose their line numbers,
  // and errors should point at the line. Key by key only where a sweep may complete the
  // run (a swept preset, a dimension only the sweep gives); each run is checked whole below.
  parse_run_config(root, source, axes.empty() ? Checks::kWholeRun : Checks::kEachKey);
  toml::table base = root;
  base.erase("sweep");
  const auto seeds = top.section("run").get_int_list("seeds", std::vector<int64_t>{1});

  std::vector<SweepRun> runs;
  std::vector<std::string> positions;  // of each run in the grid, for errors
  std::map<std::string, size_t> run_of_id;
  std::vector<size_t> choice(axes.size(), 0);
  while (true) {
    toml::table point = base;
    nlohmann::json group;
    std::vector<std::pair<std::string, std::string>> fragments;
    std::string point_position, point_sources;
    for (size_t a = 0; a < axes.size(); ++a) {
      const auto& axis = axes[a];
      const auto& value = *axis.values->get(choice[a]);
      point_position += entry_name(axis.key) + "[" + std::to_string(choice[a]) + "], ";
      point_sources += (a ? "; " : "") + sweep.where(axis.key) + "[" + std::to_string(choice[a]) + "]";
      if (axis.key == "method") {
        point.insert_or_assign("method", value);
        for (const auto& [k, v] : method_fragments(*value.as_table())) {
          fragments.emplace_back(k, v);
          group["method." + k] = v;
        }
      } else {
        if (auto blocked = set_path(point, axis.path, value))
          sweep.fail(axis.key, "'" + *blocked + "' is not a table, so it has no key '" +
                                   axis.key.substr(blocked->size() + 1) + "'");
        if (axis.key != "method.name") fragments.emplace_back(axis.path.back(), value_text(value));
        group[axis.key] = value_text(value);
      }
    }
    for (size_t s = 0; s < seeds.size(); ++s) {
      // [run] stays a table: the file's was checked, and the sweep cannot replace it.
      set_path(point, {"run", "seeds"}, toml::array{seeds[s]});
      SweepRun run;
      run.seed = seeds[s];
      run.all_seeds = seeds;
      const auto method_name = method_name_of(point);
      std::string id = method_name;
      for (const auto& [k, v] : fragments) id += "-" + k + "=" + v;
      run.id = safe_directory_name(id + "-seed=" + std::to_string(seeds[s]));
      positions.push_back(point_position + "run.seeds[" + std::to_string(s) + "]");
      // Found here rather than by the run's mkdir, after a Slurm array was submitted.
      if (run.id.size() > kMaxIdBytes)
        throw ConfigError(source + ": run id '" + run.id + "' (" + positions.back() + ") has " +
                          std::to_string(run.id.size()) + " bytes, more than a directory name may have (" +
                          std::to_string(kMaxIdBytes) + "); shorten the swept values, e.g. fewer or shorter layer "
                          "patterns");
      const auto [first, unique] = run_of_id.emplace(run.id, runs.size());
      if (!unique)
        throw ConfigError(source + ": runs " + std::to_string(first->second) + " and " + std::to_string(runs.size()) +
                          " would both write run id '" + run.id + "' (" + positions[first->second] + " and " +
                          positions.back() + "); make these values distinct (docs/config.md, \"Run ids\")");
      run.group = group;
      run.group["method.name"] = method_name;
      try {
        run.config = parse_run_config(point, source);
        require_train_split(point, run.config, source);
      } catch (const ConfigError& e) {
        // The swept values are copies, which have no line: name the entries they came from.
        throw ConfigError("run " + run.id + (point_sources.empty() ? "" : " (values of " + point_sources + ")") + ": " +
                          e.what());
      }
      runs.push_back(std::move(run));
    }
    size_t a = 0;
    while (a < axes.size() && ++choice[a] == axes[a].values->size()) choice[a++] = 0;
    if (a == axes.size()) break;
  }
  return runs;
}

}  // namespace sparser::config

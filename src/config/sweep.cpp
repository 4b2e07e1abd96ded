#include "config/sweep.h"

#include <sstream>

namespace sparser::config {

namespace {

std::string value_text(const toml::node& node) {
  if (auto s = node.value_exact<std::string>()) return *s;
  if (const auto* a = node.as_array()) {
    std::string joined;
    for (const auto& element : *a) joined += (joined.empty() ? "" : "+") + value_text(element);
    return joined;
  }
  std::ostringstream out;
  node.visit([&](const auto& v) { out << v; });
  return out.str();
}

void set_path(toml::table& root, const std::string& dotted, const toml::node& value) {
  toml::table* table = &root;
  std::stringstream parts(dotted);
  std::vector<std::string> names;
  for (std::string part; std::getline(parts, part, '.');) names.push_back(part);
  for (size_t i = 0; i + 1 < names.size(); ++i) {
    auto* child = table->get(names[i]);
    if (!child) child = table->insert(names[i], toml::table{}).first->second.as_table();
    table = child->as_table();
  }
  table->insert_or_assign(names.back(), value);
}

// "name=value" fragments of a method table, name first.
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

}  // namespace

std::vector<SweepRun> expand_runs(const toml::table& root, const std::string& source) {
  // The file as written is checked first: copies of a table lose their line numbers,
  // and errors should point at the line.
  parse_run_config(root, source);
  const TomlSection top(&root, source, "");
  std::vector<std::pair<std::string, const toml::array*>> axes;
  if (const auto* sweep = root.get("sweep")) {
    if (!sweep->is_table()) top.fail("sweep", "expected a table of key = [values]");
    const TomlSection sweep_section(sweep->as_table(), source, "sweep");
    for (const auto& [key, values] : *sweep->as_table()) {
      const std::string name(key.str());
      if (!values.is_array() || values.as_array()->empty())
        sweep_section.fail(name, "expected a non-empty array of values");
      if (name == "run.seeds") sweep_section.fail(name, "seeds come from run.seeds, not the sweep");
      axes.emplace_back(name, values.as_array());
    }
  }
  toml::table base = root;
  base.erase("sweep");
  const auto seeds = TomlSection(&root, source, "").section("run").get_int_list("seeds", std::vector<int64_t>{1});

  std::vector<SweepRun> runs;
  std::vector<size_t> choice(axes.size(), 0);
  while (true) {
    toml::table point = base;
    nlohmann::json group;
    std::vector<std::pair<std::string, std::string>> fragments;
    for (size_t a = 0; a < axes.size(); ++a) {
      const auto& [key, values] = axes[a];
      const auto& value = *values->get(choice[a]);
      if (key == "method") {
        if (!value.is_table()) top.fail("sweep", "entries of sweep.method must be method tables");
        point.insert_or_assign("method", value);
        for (const auto& [k, v] : method_fragments(*value.as_table())) {
          fragments.emplace_back(k, v);
          group["method." + k] = v;
        }
      } else {
        set_path(point, key, value);
        if (key != "method.name") fragments.emplace_back(key.substr(key.rfind('.') + 1), value_text(value));
        group[key] = value_text(value);
      }
    }
    for (const auto seed : seeds) {
      set_path(point, "run.seeds", toml::array{seed});
      SweepRun run;
      run.seed = seed;
      const auto method_name = method_name_of(point);
      run.id = method_name;
      for (const auto& [k, v] : fragments) run.id += "-" + k + "=" + v;
      run.id += "-seed=" + std::to_string(seed);
      run.group = group;
      run.group["method.name"] = method_name;
      try {
        run.config = parse_run_config(point, source);
      } catch (const ConfigError& e) {
        throw ConfigError("run " + run.id + ": " + e.what());
      }
      runs.push_back(std::move(run));
    }
    size_t a = 0;
    while (a < axes.size() && ++choice[a] == axes[a].second->size()) choice[a++] = 0;
    if (a == axes.size()) break;
  }
  return runs;
}

}  // namespace sparser::config

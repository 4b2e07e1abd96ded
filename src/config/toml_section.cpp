#include "config/toml_section.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace sparser::config {

KeyParent key_parent(toml::table& root, const std::vector<std::string>& path, const std::string& origin) {
  toml::table* table = &root;
  std::string prefix;
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    prefix += (i ? "." : "") + path[i];
    auto* child = table->get(path[i]);
    // A parsed empty document is the one way to give a table a source (copies drop it).
    if (!child)
      child = table->insert(path[i], origin.empty() ? toml::table{} : toml::parse(std::string_view(), origin))
                  .first->second.as_table();
    if (!child->is_table()) return {nullptr, prefix};
    table = child->as_table();
  }
  return {table, ""};
}

toml::table parse_toml_file(const std::string& path) {
  // An ifstream opens a directory and reads it as an empty file: every key would take its default.
  if (std::filesystem::is_directory(path)) throw ConfigError(path + ": is a directory, not a config file");
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot open config file");
  std::stringstream text;
  text << in.rdbuf();
  try {
    return toml::parse(text.str(), path);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    throw ConfigError(path + ":" + std::to_string(where.line) + ":" + std::to_string(where.column) +
                      ": TOML syntax error: " + std::string(e.description()));
  }
}

TomlSection::TomlSection(const toml::table* table, std::string file, std::string prefix)
    : table_(table), file_(std::move(file)), prefix_(std::move(prefix)) {}

bool TomlSection::has(const std::string& key) const { return node(key) != nullptr; }

bool TomlSection::overridden(const std::string& key) const {
  const auto* n = node(key);
  return n && override_of(*n).has_value();
}

const toml::node* TomlSection::node(const std::string& key) const {
  return table_ ? table_->get(key) : nullptr;
}

std::string override_origin(const std::string& override_text) { return "--set " + override_text; }

std::optional<std::string> override_of(const toml::node& node) {
  const auto& path = node.source().path;
  if (path && path->rfind("--set ", 0) == 0) return *path;
  return std::nullopt;
}

std::vector<std::string> split_key_path(const std::string& dotted) {
  std::vector<std::string> names(1);
  for (const char c : dotted) {
    if (c == '.')
      names.emplace_back();
    else
      names.back() += c;
  }
  return names;
}

std::string TomlSection::where(const std::string& key) const {
  const std::string full_key = prefix_.empty() ? key : prefix_ + "." + key;
  // The key's own node, or the table when the key is absent.
  const toml::node* located = node(key);
  if (!located) located = table_;
  if (!located) return file_ + ": " + full_key;
  if (auto override_text = override_of(*located)) return *override_text + ": " + full_key;
  const auto line = located->source().begin.line;
  return file_ + (line > 0 ? ":" + std::to_string(line) : "") + ": " + full_key;
}

void TomlSection::fail(const std::string& key, const std::string& message) const {
  throw ConfigError(where(key) + ": " + message);
}

int64_t TomlSection::get_int(const std::string& key, std::optional<int64_t> fallback) const {
  const auto* n = node(key);
  if (!n) {
    if (!fallback) fail(key, "required key is missing");
    return *fallback;
  }
  if (auto v = n->value_exact<int64_t>()) return *v;
  fail(key, "expected an integer");
}

double TomlSection::get_double(const std::string& key, std::optional<double> fallback) const {
  const auto* n = node(key);
  if (!n) {
    if (!fallback) fail(key, "required key is missing");
    return *fallback;
  }
  if (auto v = n->value_exact<double>()) return *v;
  if (auto v = n->value_exact<int64_t>()) return static_cast<double>(*v);
  fail(key, "expected a number");
}

bool TomlSection::get_bool(const std::string& key, std::optional<bool> fallback) const {
  const auto* n = node(key);
  if (!n) {
    if (!fallback) fail(key, "required key is missing");
    return *fallback;
  }
  if (auto v = n->value_exact<bool>()) return *v;
  fail(key, "expected true or false");
}

std::string TomlSection::get_string(const std::string& key, std::optional<std::string> fallback) const {
  const auto* n = node(key);
  if (!n) {
    if (!fallback) fail(key, "required key is missing");
    return *fallback;
  }
  if (auto v = n->value_exact<std::string>()) return *v;
  fail(key, "expected a string");
}

std::vector<int64_t> TomlSection::get_int_list(const std::string& key,
                                               std::optional<std::vector<int64_t>> fallback) const {
  const auto* n = node(key);
  if (!n) {
    if (!fallback) fail(key, "required key is missing");
    return *fallback;
  }
  const auto* array = n->as_array();
  if (!array) fail(key, "expected an array of integers");
  std::vector<int64_t> values;
  for (const auto& element : *array) {
    auto v = element.value_exact<int64_t>();
    if (!v) fail(key, "expected an array of integers");
    values.push_back(*v);
  }
  return values;
}

std::vector<std::string> TomlSection::get_string_list(const std::string& key,
                                                      std::optional<std::vector<std::string>> fallback) const {
  const auto* n = node(key);
  if (!n) {
    if (!fallback) fail(key, "required key is missing");
    return *fallback;
  }
  if (auto single = n->value_exact<std::string>()) return {*single};
  const auto* array = n->as_array();
  if (!array) fail(key, "expected a string or an array of strings");
  std::vector<std::string> values;
  for (const auto& element : *array) {
    auto v = element.value_exact<std::string>();
    if (!v) fail(key, "expected an array of strings");
    values.push_back(*v);
  }
  return values;
}

std::string TomlSection::get_choice(const std::string& key, const std::vector<std::string>& choices,
                                    std::optional<std::string> fallback) const {
  auto value = get_string(key, std::move(fallback));
  if (std::find(choices.begin(), choices.end(), value) == choices.end()) {
    std::string list;
    for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
    fail(key, "'" + value + "' is not one of: " + list);
  }
  return value;
}

TomlSection TomlSection::section(const std::string& key) const {
  const auto* n = node(key);
  const std::string child = prefix_.empty() ? key : prefix_ + "." + key;
  if (!n) return TomlSection(nullptr, file_, child);
  if (!n->is_table()) fail(key, "expected a table");
  return TomlSection(n->as_table(), file_, child);
}

void TomlSection::reject_unknown_keys(const std::vector<std::string>& allowed) const {
  if (!table_) return;
  for (const auto& [key, value] : *table_) {
    const std::string name(key.str());
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      fail(name, "unknown key (allowed here: " + list + ")");
    }
  }
}

}  // namespace sparser::config

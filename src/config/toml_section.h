#pragma once
// Typed, checked access to one table of a TOML config. Every error names the file,
// the line and the full key (e.g. "coco.toml:12: model.window_size: expected an integer"),
// or, for a value given on the command line, the override
// ("--set train.lr=abc: train.lr: expected a number").
#include <toml++/toml.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace sparser::config {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// How much of a config to check: each key on its own (type, range), or also how the keys
// make one run (a custom model's complete dimensions, PARSER's layer patterns against the
// model), which a [sweep] may complete or change.
enum class Checks { kEachKey, kWholeRun };

class TomlSection {
 public:
  // `table` may be null (section absent): every key then takes its default.
  TomlSection(const toml::table* table, std::string file, std::string prefix);

  bool present() const { return table_ != nullptr; }
  bool has(const std::string& key) const;
  // Whether the key's value came from a --set override.
  bool overridden(const std::string& key) const;

  int64_t get_int(const std::string& key, std::optional<int64_t> fallback = std::nullopt) const;
  double get_double(const std::string& key, std::optional<double> fallback = std::nullopt) const;
  bool get_bool(const std::string& key, std::optional<bool> fallback = std::nullopt) const;
  std::string get_string(const std::string& key, std::optional<std::string> fallback = std::nullopt) const;
  std::vector<int64_t> get_int_list(const std::string& key,
                                    std::optional<std::vector<int64_t>> fallback = std::nullopt) const;
  std::vector<std::string> get_string_list(const std::string& key,
                                           std::optional<std::vector<std::string>> fallback = std::nullopt) const;
  // A string that must be one of `choices`.
  std::string get_choice(const std::string& key, const std::vector<std::string>& choices,
                         std::optional<std::string> fallback = std::nullopt) const;
  // A nested table (absent → a section with no table).
  TomlSection section(const std::string& key) const;

  // Throws naming the first key of this table not in `allowed`.
  void reject_unknown_keys(const std::vector<std::string>& allowed) const;
  // Throws "<where(key)>: <message>".
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;
  // "<file>:<line>: <prefix>.<key>", or "--set <override>: <prefix>.<key>" for a value
  // that came from an override.
  std::string where(const std::string& key) const;

  const std::string& file() const { return file_; }
  const toml::table* table() const { return table_; }

 private:
  const toml::node* node(const std::string& key) const;

  const toml::table* table_;
  std::string file_;
  std::string prefix_;
};

// Parses a TOML file; syntax errors name the file, line and column.
toml::table parse_toml_file(const std::string& path);

// Values parsed from a --set override carry "--set <override>" as their source path
// (toml++ keeps it when a node is moved, not when it is copied), so errors about them
// name the override instead of a line of the file.
std::string override_origin(const std::string& override_text);
// The override a node came from ("--set train.lr=abc"), if it came from one.
std::optional<std::string> override_of(const toml::node& node);

// "a.b.c" → {"a", "b", "c"}: the path of a dotted config key (as written in [sweep]);
// "a..b" and "a." give empty names.
std::vector<std::string> split_key_path(const std::string& dotted);

// A TOML array of `values`.
template <typename T>
toml::array to_toml_array(const std::vector<T>& values) {
  toml::array array;
  for (const auto& v : values) array.push_back(v);
  return array;
}

// The table that holds the last key of `path` (dotted parts), creating missing tables
// on the way; with an `origin` (override_origin), the tables it creates carry it as their
// source, so that an error about one (say, a misspelt section) names the override. When a
// part is a value rather than a table, `table` is null and `blocked` names the path up to
// it (e.g. "run.name").
struct KeyParent {
  toml::table* table = nullptr;
  std::string blocked;
};
KeyParent key_parent(toml::table& root, const std::vector<std::string>& path, const std::string& origin = "");

}  // namespace sparser::config

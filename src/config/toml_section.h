#pragma once
// Typed, checked access to one table of a TOML config. Every error names the file,
// the line and the full key (e.g. "coco.toml:12: model.window_size: expected an integer").
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

class TomlSection {
 public:
  // `table` may be null (section absent): every key then takes its default.
  TomlSection(const toml::table* table, std::string file, std::string prefix);

  bool present() const { return table_ != nullptr; }
  bool has(const std::string& key) const;

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
  // Throws "<file>:<line>: <prefix>.<key>: <message>".
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;

  const std::string& file() const { return file_; }
  const toml::table* table() const { return table_; }

 private:
  const toml::node* node(const std::string& key) const;
  std::string where(const std::string& key) const;

  const toml::table* table_;
  std::string file_;
  std::string prefix_;
};

// Parses a TOML file; syntax errors name the file, line and column.
toml::table parse_toml_file(const std::string& path);

// A TOML array of `values`.
template <typename T>
toml::array to_toml_array(const std::vector<T>& values) {
  toml::array array;
  for (const auto& v : values) array.push_back(v);
  return array;
}

}  // namespace sparser::config

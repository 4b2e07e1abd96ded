#include "methods/layer_pattern.h"

#include <algorithm>

namespace sparser::methods {

namespace {
bool match_from(const std::string& name, size_t n, const std::string& pattern, size_t p) {
  while (p < pattern.size()) {
    if (pattern[p] == '*') {
      const bool across = p + 1 < pattern.size() && pattern[p + 1] == '*';
      const size_t next = p + (across ? 2 : 1);
      for (size_t k = n; k <= name.size(); ++k) {
        if (match_from(name, k, pattern, next)) return true;
        if (k < name.size() && name[k] == '.' && !across) return false;
      }
      return false;
    }
    if (n >= name.size() || name[n] != pattern[p]) return false;
    ++n, ++p;
  }
  return n == name.size();
}
}  // namespace

bool matches_pattern(const std::string& name, const std::string& pattern) { return match_from(name, 0, pattern, 0); }

std::string unmatched_patterns(const std::vector<std::string>& patterns, const std::vector<std::string>& names) {
  std::string unmatched;
  for (const auto& pattern : patterns)
    if (std::none_of(names.begin(), names.end(), [&](const std::string& n) { return matches_pattern(n, pattern); }))
      unmatched += (unmatched.empty() ? "'" : ", '") + pattern + "'";
  return unmatched;
}

}  // namespace sparser::methods

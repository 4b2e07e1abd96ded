#include "methods/layer_selection.h"

#include <stdexcept>

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

std::vector<NamedLayer> select_layers(torch::nn::Module& model, const std::vector<std::string>& patterns) {
  std::vector<NamedLayer> selected;
  std::vector<bool> used(patterns.size(), false);
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    auto layer = std::dynamic_pointer_cast<model::HookedLayer>(item.value());
    if (!layer) continue;
    bool hit = false;
    for (size_t i = 0; i < patterns.size(); ++i)
      if (matches_pattern(item.key(), patterns[i])) used[i] = hit = true;
    if (hit) selected.push_back({item.key(), layer});
  }
  std::string unmatched;
  for (size_t i = 0; i < patterns.size(); ++i)
    if (!used[i]) unmatched += (unmatched.empty() ? "'" : ", '") + patterns[i] + "'";
  if (!unmatched.empty())
    throw std::invalid_argument("no Linear/Conv2d layer matches " + unmatched +
                                " (list them with: sparser_inspect --preset vit_b)");
  return selected;
}

}  // namespace sparser::methods

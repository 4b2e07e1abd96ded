#include "methods/layer_selection.h"

#include <algorithm>
#include <stdexcept>

namespace sparser::methods {

std::vector<NamedLayer> select_layers(torch::nn::Module& model, const std::vector<std::string>& patterns) {
  std::vector<NamedLayer> selected;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    auto layer = std::dynamic_pointer_cast<model::HookedLayer>(item.value());
    if (!layer) continue;
    if (std::any_of(patterns.begin(), patterns.end(),
                    [&](const std::string& pattern) { return matches_pattern(item.key(), pattern); }))
      selected.push_back({item.key(), layer});
  }
  std::vector<std::string> names;
  for (const auto& named : selected) names.push_back(named.name);
  if (const auto unmatched = unmatched_patterns(patterns, names); !unmatched.empty())
    throw std::invalid_argument("no Linear/Conv2d layer matches " + unmatched +
                                " (list them with: sparser_inspect --config CONFIG)");
  return selected;
}

}  // namespace sparser::methods

#pragma once
// Module-name patterns (PARSER's `layers`): `*` matches within one dotted component,
// `**` across components.
#include <string>
#include <vector>

namespace sparser::methods {

bool matches_pattern(const std::string& name, const std::string& pattern);
// The patterns that match none of `names`, quoted and in order for an error ("'a', 'b'");
// empty when each matches one.
std::string unmatched_patterns(const std::vector<std::string>& patterns, const std::vector<std::string>& names);

}  // namespace sparser::methods

#pragma once
// What changed between the resolved config a run directory holds and the one about to
// run there. A run continued (or skipped as completed) under other settings would mix
// two configurations in one result, so sparser_run refuses such a change.
#include <toml++/toml.h>

#include <string>
#include <vector>

namespace sparser::config {

// "key: old → new" (or "(absent)") for every dotted key whose value differs, leaving out
// the keys that only change how a run executes, not what it computes: threads, device,
// logging interval, output directory and seed list, data loader workers and prefetch,
// prompts per decoder pass, checkpoint spacing, and where the trunk cache lives.
// With AbsentKeys::kIgnored, a key only one of the two holds is no change: run directories
// of two sparser versions, the older of which did not have the key yet, can still be compared.
enum class AbsentKeys { kChange, kIgnored };
std::vector<std::string> result_changes(const toml::table& stored, const toml::table& current,
                                        AbsentKeys absent = AbsentKeys::kChange);

}  // namespace sparser::config

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
//
// Comparison::kSameMachine compares every such key, as sparser_run does with the run
// directory it continues. Comparison::kAcrossMachines is for runs that may come from other
// machines and sparser versions (the seeds sparser_analyze averages): file paths
// (data.train, data.val, model.checkpoint) and keys only one of the two configs holds (one
// an older version did not have yet) are not compared.
enum class Comparison { kSameMachine, kAcrossMachines };
std::vector<std::string> result_changes(const toml::table& stored, const toml::table& current,
                                        Comparison comparison = Comparison::kSameMachine);

}  // namespace sparser::config

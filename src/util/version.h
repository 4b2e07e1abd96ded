#pragma once
// Build provenance recorded in every run's summary.json.
namespace sparser::util {
extern const char* const kVersion;
extern const char* const kGitCommit;  // "unknown" outside a git checkout
}  // namespace sparser::util

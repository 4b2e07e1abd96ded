#pragma once
// Build provenance recorded in every run's summary.json.
namespace sparser::util {
extern const char* const kVersion;
extern const char* const kGitCommit;  // git describe --dirty of the build; "unknown" outside a checkout
}  // namespace sparser::util

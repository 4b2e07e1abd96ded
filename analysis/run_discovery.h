// Turns command-line arguments (run directories, directories of runs, shell
// patterns) into the run directories they name.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace sparser::analysis {

// An argument that names an existing path is taken as named (a directory "runs
// [v2]" is no pattern), any other is expanded with POSIX glob(); every match that
// is a run directory is taken as is, any other directory is searched one level
// down for run directories. The result is sorted and free of duplicates (by canonical
// path), so overlapping patterns do not count a run twice. Throws
// std::runtime_error when an argument matches no run directory, since a typo
// would otherwise silently drop rows from a table.
std::vector<std::filesystem::path> find_run_dirs(const std::vector<std::string>& arguments);

}  // namespace sparser::analysis

#include "run_discovery.h"

#include <glob.h>

#include <algorithm>
#include <set>
#include <stdexcept>

#include "run_record.h"

namespace sparser::analysis {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> glob_matches(const std::string& pattern) {
  glob_t result{};
  const int rc = ::glob(pattern.c_str(), GLOB_TILDE | GLOB_BRACE, nullptr, &result);
  std::vector<std::string> matches;
  if (rc == 0)
    for (size_t i = 0; i < result.gl_pathc; ++i) matches.emplace_back(result.gl_pathv[i]);
  globfree(&result);
  if (rc != 0 && rc != GLOB_NOMATCH) throw std::runtime_error("cannot expand '" + pattern + "'");
  return matches;
}

std::vector<fs::path> run_dirs_in(const fs::path& match) {
  if (is_run_dir(match)) return {match};
  std::vector<fs::path> found;
  if (fs::is_directory(match))
    for (const auto& entry : fs::directory_iterator(match))
      if (entry.is_directory() && is_run_dir(entry.path())) found.push_back(entry.path());
  return found;
}

}  // namespace

std::vector<fs::path> find_run_dirs(const std::vector<std::string>& arguments) {
  std::set<fs::path> canonical_seen;
  std::vector<fs::path> dirs;
  for (const auto& argument : arguments) {
    size_t found_here = 0;
    // A path that exists is what the user named, even with glob characters in it ("runs [v2]").
    const auto matches = fs::exists(argument) ? std::vector<std::string>{argument} : glob_matches(argument);
    for (const auto& match : matches) {
      for (const auto& dir : run_dirs_in(match)) {
        ++found_here;
        if (canonical_seen.insert(fs::canonical(dir)).second) dirs.push_back(dir);
      }
    }
    if (found_here == 0) throw std::runtime_error("'" + argument + "' matches no run directory (no summary.json)");
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

}  // namespace sparser::analysis

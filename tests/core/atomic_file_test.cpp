// Files written whole or not at all (util/atomic_file.h).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "util/atomic_file.h"

namespace fs = std::filesystem;
namespace util = sparser::util;

namespace {

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sparser_atomic_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

}  // namespace

TEST_F(AtomicFileTest, AMissingDirectoryIsNamedNotTheTemporaryFile) {
  try {
    util::write_file_atomically(path("missing/x.pth"), "x");
    ADD_FAILURE() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), path("missing/x.pth") + ": cannot write: " + path("missing") +
                                         " is not a directory");
  }
}

TEST_F(AtomicFileTest, StaleTemporariesAreRemovedAndNothingElse) {
  // A user's own "notes.tmp.1" is no temporary of ours.
  for (const auto* name : {"trained.pth.sparser-tmp.123", "summary.json.sparser-tmp.9", "keep.sparser-tmp.",
                           "keep.sparser-tmp.12a", "keep.json", ".sparser-tmp.5", "notes.tmp.1"})
    std::ofstream(path(name)) << "x";
  fs::create_directories(path("step_10.sparser-tmp.7"));  // a directory: not one of ours
  util::remove_stale_temporaries(dir_.string());
  EXPECT_FALSE(fs::exists(path("trained.pth.sparser-tmp.123")));
  EXPECT_FALSE(fs::exists(path("summary.json.sparser-tmp.9")));
  for (const auto* kept : {"keep.sparser-tmp.", "keep.sparser-tmp.12a", "keep.json", ".sparser-tmp.5", "notes.tmp.1",
                           "step_10.sparser-tmp.7"})
    EXPECT_TRUE(fs::exists(path(kept))) << kept;
}

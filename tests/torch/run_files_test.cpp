// The files a run writes as it goes (checkpoints, metrics.jsonl, train.log) on a disk
// that fills up, imitated with RLIMIT_FSIZE: a write past the limit fails with EFBIG,
// as one on a full disk fails with ENOSPC.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "train/run_log.h"
#include "train/training_state.h"

namespace fs = std::filesystem;
using namespace sparser;

namespace {

class RunFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("sparser_run_files_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    allow_any_file_size();
    fs::remove_all(dir_);
  }

  // Writes that would make a file larger than `bytes` fail (EFBIG; SIGXFSZ ignored).
  void limit_file_size(uintmax_t bytes) {
    ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved_limit_), 0);
    previous_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit limited = saved_limit_;
    limited.rlim_cur = static_cast<rlim_t>(bytes);
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limited), 0);
    limited_ = true;
  }
  void allow_any_file_size() {
    if (!limited_) return;
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &saved_limit_), 0);
    std::signal(SIGXFSZ, previous_handler_);
    limited_ = false;
  }

  fs::path dir_;
  rlimit saved_limit_{};
  void (*previous_handler_)(int) = SIG_DFL;
  bool limited_ = false;
};

std::vector<std::string> lines_of(const fs::path& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> entries_of(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Trained tensors and an Adam optimiser with state: its optimizer.pt (two moments a
// tensor) is about twice the size of trained.pth.
struct Training {
  torch::Tensor weight = torch::randn({256, 256}, torch::requires_grad());
  methods::NamedTensors trained{{"weight", weight}};
  torch::optim::Adam optimizer{std::vector<torch::Tensor>{weight}};
  Training() {
    weight.sum().backward();
    optimizer.step();
  }
};

train::Position at_step(int64_t step) {
  train::Position position;
  position.global_step = step;
  return position;
}

}  // namespace

TEST_F(RunFilesTest, ACheckpointTheDiskCannotHoldThrowsNamingTheFileAndKeepsTheLastOne) {
  Training training;
  train::save_checkpoint(dir_.string(), training.trained, training.optimizer, at_step(1));
  const auto first = dir_ / "checkpoints" / "step_00000001";
  ASSERT_EQ(train::latest_checkpoint(dir_.string()), first.string());
  // Room for trained.pth, not for optimizer.pt (LibTorch's writer ended the process here).
  const auto trained_size = fs::file_size(first / "trained.pth");
  ASSERT_GT(fs::file_size(first / "optimizer.pt"), trained_size * 3 / 2);
  limit_file_size(trained_size * 3 / 2);
  try {
    train::save_checkpoint(dir_.string(), training.trained, training.optimizer, at_step(2));
    ADD_FAILURE() << "a checkpoint larger than the disk allows was saved";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("step_00000002.tmp/optimizer.pt: write failed"), std::string::npos)
        << e.what();
  }
  allow_any_file_size();
  EXPECT_EQ(entries_of(dir_ / "checkpoints"), std::vector<std::string>{"step_00000001"});
  EXPECT_EQ(train::latest_checkpoint(dir_.string()), first.string());
}

TEST_F(RunFilesTest, OnlyCheckpointsWithAllTheirFilesAreResumedFrom) {
  Training training;
  train::save_checkpoint(dir_.string(), training.trained, training.optimizer, at_step(1));
  const auto checkpoints = dir_ / "checkpoints";
  // What kills leave behind: a checkpoint being built, one moved aside to be replaced,
  // and one that an earlier version was removing in place (state.json still there).
  for (const auto* name : {"step_00000002.tmp", "step_00000003.old", "step_00000004"})
    fs::copy(checkpoints / "step_00000001", checkpoints / name);
  fs::remove(checkpoints / "step_00000004" / "optimizer.pt");
  EXPECT_EQ(train::latest_checkpoint(dir_.string()), (checkpoints / "step_00000001").string());

  // The next save clears the leftovers; saving one step twice replaces its checkpoint.
  train::save_checkpoint(dir_.string(), training.trained, training.optimizer, at_step(5));
  auto later = at_step(5);
  later.trained_images = 10;
  train::save_checkpoint(dir_.string(), training.trained, training.optimizer, later);
  for (const auto& name : entries_of(checkpoints))
    EXPECT_EQ(name.find('.'), std::string::npos) << name << " was left behind";
  EXPECT_EQ(train::latest_checkpoint(dir_.string()), (checkpoints / "step_00000005").string());
  std::ifstream state(checkpoints / "step_00000005" / "state.json");
  EXPECT_EQ(nlohmann::json::parse(state).at("trained_images"), 10);
}

TEST_F(RunFilesTest, ARecordOrLogLineTheDiskCannotHoldThrowsNamingTheFileAndLeavesNoPartOfIt) {
  train::RunLog log(dir_.string(), /*enabled=*/true);
  log.start_over();
  log.record({{"type", "step"}, {"step", 1}});
  log.info("step 1");
  const auto metrics = dir_ / "metrics.jsonl", train_log = dir_ / "train.log";
  const auto metrics_before = lines_of(metrics), log_before = lines_of(train_log);
  // Room for a few more bytes in each file, not for a whole record or line.
  limit_file_size(std::max(fs::file_size(metrics), fs::file_size(train_log)) + 8);
  const std::string long_text(64, 'x');
  for (int attempt = 0; attempt < 2; ++attempt) {  // the second would have been dropped silently
    try {
      log.record({{"type", "step"}, {"step", 2}, {"note", long_text}});
      ADD_FAILURE() << "a record larger than the disk allows was written";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(metrics.string() + ": write failed"), std::string::npos) << e.what();
    }
    try {
      log.info(long_text);
      ADD_FAILURE() << "a log line larger than the disk allows was written";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(train_log.string() + ": write failed"), std::string::npos) << e.what();
    }
  }
  allow_any_file_size();
  EXPECT_EQ(lines_of(metrics), metrics_before);
  EXPECT_EQ(lines_of(train_log), log_before);
  // Once there is room again, records are whole lines after the earlier ones.
  log.record({{"type", "step"}, {"step", 3}});
  const auto after = lines_of(metrics);
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(nlohmann::json::parse(after.back()).at("step"), 3);
}

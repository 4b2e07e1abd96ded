// sparser_prep on bad input and at its edges: corrupt or missing files are named and
// either fail the run or are skipped by flag; the output is replaced atomically or not at
// all (failures, signals, killed runs); the output does not depend on the thread count;
// seeded splits are disjoint.
#include <gtest/gtest.h>
#include <signal.h>

#include <opencv2/imgcodecs.hpp>

#include <chrono>
#include <set>
#include <thread>

#include "data_test_util.h"

using sparser::test::read_all;
using sparser::test::read_text;
using sparser::test::run_prep;
using sparser::test::ScratchDir;
namespace fs = std::filesystem;

namespace {

// <root>/images/<i>.png with <root>/masks/<i>.png holding two labelled rectangles.
void write_folder(const fs::path& root, int images) {
  for (int i = 0; i < images; ++i) {
    cv::Mat image(24, 32, CV_8UC3, cv::Scalar(i, 2 * i, 3 * i)), mask(24, 32, CV_8U, cv::Scalar(0));
    mask(cv::Rect(1 + i % 5, 2, 6, 5)) = 1;
    mask(cv::Rect(14, 8 + i % 7, 9, 4)) = 2;
    sparser::test::write_image((root / "images" / (std::to_string(i) + ".png")).string(), image);
    sparser::test::write_image((root / "masks" / (std::to_string(i) + ".png")).string(), mask);
  }
}

void expect_contains(const std::string& text, const std::string& part) {
  EXPECT_NE(text.find(part), std::string::npos) << "expected '" << part << "' in:\n" << text;
}

}  // namespace

TEST(PrepErrors, MissingLabelFileFailsOrIsSkippedNamingIt) {
  ScratchDir dir("prep_missing_label");
  write_folder(dir.path() / "mine", 3);
  fs::remove(dir.path() / "mine/masks/1.png");
  std::string log;
  EXPECT_EQ(run_prep("folder --root " + (dir / "mine") + " -o " + (dir / "out"), &log), 1);
  expect_contains(log, "masks/1.png: missing or unreadable");
  EXPECT_FALSE(fs::exists(dir / "out"));
  ASSERT_EQ(run_prep("folder --root " + (dir / "mine") + " -o " + (dir / "out") + " --on-error skip", &log), 0) << log;
  expect_contains(log, "files skipped as corrupt or missing: 1");
  expect_contains(log, "masks/1.png");
  EXPECT_EQ(read_all(dir / "out/train.manifest.json").size(), 2u);
}

TEST(PrepErrors, CorruptAndHeaderOnlyNiftiAreNamed) {
  ScratchDir dir("prep_bad_nifti");
  const int nx = 4, ny = 3, nz = 2;
  std::vector<int16_t> ct(nx * ny * nz, 40), label(nx * ny * nz, 1);
  for (const std::string patient : {"Case_00001", "Case_00002", "Case_00003", "Case_00004"}) {
    sparser::test::write_nifti(dir / ("Image/" + patient + "_0000.nii.gz"), nx, ny, nz, ct);
    sparser::test::write_nifti(dir / ("Mask/" + patient + ".nii.gz"), nx, ny, nz, label);
  }
  sparser::test::write_bytes(dir / "Mask/Case_00002.nii.gz", std::vector<uint8_t>(400, 0x5a));
  const std::string arguments = "abdomenct --images " + (dir / "Image") + " --labels " + (dir / "Mask") +
                                " --min-area 1 --train-fraction 0.5";
  std::string log;
  EXPECT_EQ(run_prep(arguments + " -o " + (dir / "out"), &log), 1);
  expect_contains(log, "Mask/Case_00002.nii.gz: not NIfTI-1");
  ASSERT_EQ(run_prep(arguments + " -o " + (dir / "out") + " --on-error skip", &log), 0) << log;
  expect_contains(log, "files skipped as corrupt or missing: 1");
  EXPECT_EQ(read_all(dir / "out/train.manifest.json").size() + read_all(dir / "out/val.manifest.json").size(), 6u);

  sparser::test::write_nifti(dir / "Mask/Case_00002.nii.gz", nx, ny, nz, label, 1.f, 0.f, "ni1");
  EXPECT_EQ(run_prep(arguments + " -o " + (dir / "out_ni1"), &log), 1);
  expect_contains(log, "Mask/Case_00002.nii.gz: a NIfTI-1 header whose voxels are in a separate .img file");

  // Truncated voxel data (a gzip stream cut short).
  const std::string whole = read_text(dir / "Image/Case_00001_0000.nii.gz");
  std::ofstream(dir / "Image/Case_00001_0000.nii.gz", std::ios::binary) << whole.substr(0, whole.size() / 2);
  sparser::test::write_nifti(dir / "Mask/Case_00002.nii.gz", nx, ny, nz, label);
  EXPECT_EQ(run_prep(arguments + " -o " + (dir / "out_cut"), &log), 1);
  expect_contains(log, "Image/Case_00001_0000.nii.gz: truncated");
}

TEST(PrepErrors, ASplitWithoutSourceFilesIsAnErrorAndNothingIsWritten) {
  ScratchDir dir("prep_empty_split");
  // WHU with an empty val/image: a wrong path or layout, not an empty result.
  sparser::test::write_image(dir / "whu/train/image/a.tif", cv::Mat(8, 8, CV_8UC3, cv::Scalar(1, 2, 3)));
  cv::Mat label(8, 8, CV_8U, cv::Scalar(0));
  label(cv::Rect(2, 2, 4, 4)) = 255;
  sparser::test::write_image(dir / "whu/train/label/a.tif", label);
  fs::create_directories(dir.path() / "whu/val/image");
  std::string log;
  EXPECT_EQ(run_prep("whu --root " + (dir / "whu") + " -o " + (dir / "out"), &log), 1);
  expect_contains(log, "whu: no source files for the val split (1 for the others); nothing written");
  EXPECT_FALSE(fs::exists(dir / "out"));

  // A split whose source files give no image with instances is an error too: here a val
  // tile without buildings, then a train tile skipped as corrupt.
  sparser::test::write_image(dir / "whu/val/image/b.tif", cv::Mat(8, 8, CV_8UC3, cv::Scalar(1, 2, 3)));
  sparser::test::write_image(dir / "whu/val/label/b.tif", cv::Mat(8, 8, CV_8U, cv::Scalar(0)));
  EXPECT_EQ(run_prep("whu --root " + (dir / "whu") + " -o " + (dir / "out"), &log), 1);
  expect_contains(log, "whu: the val split's 1 source files gave no image with instances");
  EXPECT_FALSE(fs::exists(dir / "out"));
  fs::remove_all(dir.path() / "whu/val");
  sparser::test::write_bytes(dir / "whu/train/label/a.tif", {1, 2, 3});
  EXPECT_EQ(run_prep("whu --root " + (dir / "whu") + " -o " + (dir / "out") + " --on-error skip", &log), 1);
  expect_contains(log, "whu: the train split's 1 source files gave no image with instances");
  EXPECT_FALSE(fs::exists(dir / "out"));
}

TEST(PrepErrors, InvalidAnnotationJsonIsNamed) {
  ScratchDir dir("prep_bad_json");
  std::ofstream(dir / "annotations.json") << R"({"images": [{"id": 1, "file_name": "a.jpg", )";
  std::string log;
  EXPECT_EQ(run_prep("nwpu --images " + (dir / "img") + " --annotations " + (dir / "annotations.json") + " -o " +
                     (dir / "out"), &log), 1);
  expect_contains(log, "annotations.json: not valid JSON");
  EXPECT_TRUE(sparser::test::entries_starting_with(dir.path(), "out").empty());
}

TEST(PrepOutput, ExistingOutputIsRefusedBeforeAnySourceIsRead) {
  ScratchDir dir("prep_refuse_first");
  fs::create_directories(dir.path() / "out");
  std::ofstream(dir / "annotations.json") << "not even JSON";  // would fail if it were parsed
  std::string log;
  EXPECT_EQ(run_prep("nwpu --images " + (dir / "img") + " --annotations " + (dir / "annotations.json") + " -o " +
                     (dir / "out"), &log), 1);
  expect_contains(log, "output exists; pass --overwrite");
  EXPECT_EQ(log.find("not valid JSON"), std::string::npos) << log;
}

TEST(PrepOutput, FailedOverwriteKeepsTheOldOutputAndASuccessfulOneReplacesIt) {
  ScratchDir dir("prep_overwrite");
  write_folder(dir.path() / "mine", 4);
  const std::string arguments = "folder --root " + (dir / "mine") + " -o " + (dir / "out");
  std::string log;
  ASSERT_EQ(run_prep(arguments, &log), 0) << log;
  const std::string manifest = read_text(dir / "out/train.manifest.json");
  sparser::test::write_bytes(dir / "mine/images/2.png", {0x89, 'P', 'N', 'G', 1, 2, 3});
  EXPECT_EQ(run_prep(arguments + " --overwrite", &log), 1);
  expect_contains(log, "images/2.png: not a decodable image");
  EXPECT_EQ(read_text(dir / "out/train.manifest.json"), manifest);  // untouched
  EXPECT_EQ(read_all(dir / "out/train.manifest.json").size(), 4u);
  ASSERT_EQ(run_prep(arguments + " --overwrite --on-error skip", &log), 0) << log;
  EXPECT_EQ(read_all(dir / "out/train.manifest.json").size(), 3u);  // replaced
  EXPECT_EQ(sparser::test::entries_starting_with(dir.path(), "out"), std::vector<std::string>{"out"});
}

TEST(PrepOutput, SigtermStopsTheRunAndLeavesNoStagingDirectory) {
  ScratchDir dir("prep_sigterm");
  const std::string log = dir / "log.txt";
  const pid_t pid = sparser::test::start_prep(
      "synthetic --train-images 100000 --image-size 128 --threads 1 -o " + (dir / "out"), log);
  const std::string staging = "out.partial-" + std::to_string(pid);
  for (int i = 0; i < 200 && !fs::exists(dir.path() / staging); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(fs::exists(dir.path() / staging)) << read_text(log);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let it write
  kill(pid, SIGTERM);
  EXPECT_EQ(sparser::test::wait_prep(pid), 128 + SIGTERM) << read_text(log);
  expect_contains(read_text(log), "interrupted; nothing written");
  EXPECT_EQ(sparser::test::entries_starting_with(dir.path(), "out"), std::vector<std::string>{});
}

TEST(PrepOutput, StagingDirectoriesOfDeadRunsAreRemovedOthersKept) {
  ScratchDir dir("prep_stale");
  const pid_t dead = fork();  // a pid that is certainly not running any more
  if (dead == 0) _exit(0);
  waitpid(dead, nullptr, 0);
  const std::string stale = "out.partial-" + std::to_string(dead), live = "out.partial-" + std::to_string(getpid());
  sparser::test::write_bytes(dir / (stale + "/train-00000.h5"), {1, 2, 3});
  fs::create_directories(dir.path() / live);
  std::string log;
  ASSERT_EQ(run_prep("synthetic --train-images 2 --val-images 1 -o " + (dir / "out"), &log), 0) << log;
  EXPECT_FALSE(fs::exists(dir.path() / stale));
  EXPECT_TRUE(fs::exists(dir.path() / live));  // its process (this test) is alive
}

TEST(PrepDeterminism, ThreadCountDoesNotChangeTheBytes) {
  ScratchDir dir("prep_threads");
  write_folder(dir.path() / "mine", 40);  // several batches of jobs at either thread count
  std::string log;
  for (const std::string threads : {"1", "2"})
    ASSERT_EQ(run_prep("folder --root " + (dir / "mine") + " --val-fraction 0.25 --threads " +
                       threads + " -o " + (dir / ("out" + threads)), &log), 0) << log;
  for (const std::string file : {"train.manifest.json", "val.manifest.json", "train-00000.h5", "val-00000.h5"}) {
    const std::string one = read_text(dir / ("out1/" + file)), two = read_text(dir / ("out2/" + file));
    EXPECT_FALSE(one.empty()) << file;
    EXPECT_TRUE(one == two) << file << " differs between --threads 1 and 2";
  }
}

TEST(PrepSplits, FolderValFractionIsADisjointSeededSplit) {
  ScratchDir dir("prep_folder_split");
  write_folder(dir.path() / "mine", 12);
  std::string log;
  ASSERT_EQ(run_prep("folder --root " + (dir / "mine") + " --val-fraction 0.25 --seed 5 -o " + (dir / "out"), &log), 0)
      << log;
  std::set<std::string> train, val;
  for (const auto& s : read_all(dir / "out/train.manifest.json")) train.insert(s.file_name);
  for (const auto& s : read_all(dir / "out/val.manifest.json")) val.insert(s.file_name);
  EXPECT_EQ(val.size(), 3u);
  EXPECT_EQ(train.size(), 9u);
  for (const auto& name : val) EXPECT_EQ(train.count(name), 0u) << name << " in both splits";
  EXPECT_EQ(run_prep("folder --root " + (dir / "mine") + " --val-fraction 1.5 -o " + (dir / "bad"), &log), 1);
  expect_contains(log, "--val-fraction must be between 0 and 1");
}

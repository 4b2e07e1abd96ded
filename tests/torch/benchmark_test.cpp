#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>
#include <memory>
#include <vector>

#include "train/benchmark.h"

namespace {

using sparser::train::BenchOptions;
using sparser::train::kMaxExtraWarmup;
using sparser::train::kSettledPageFaults;
using sparser::train::median;

constexpr size_t kRegionBytes = 8u << 20;  // 2048 pages of 4 KB: well over kSettledPageFaults

// A step that writes 8 MiB it has never touched, in its first `fresh_steps` calls, and
// after that 8 MiB it has (no page faults): a heap growing for a few steps, then settled.
class FirstTouchSteps {
 public:
  explicit FirstTouchSteps(int fresh_steps) : fresh_steps_(fresh_steps) {}
  FirstTouchSteps(const FirstTouchSteps&) = delete;
  FirstTouchSteps& operator=(const FirstTouchSteps&) = delete;
  ~FirstTouchSteps() {
    for (void* region : regions_) munmap(region, kRegionBytes);
  }

  void operator()() {
    if (regions_.empty() || calls_ < fresh_steps_) {
      void* region = mmap(nullptr, kRegionBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      ASSERT_NE(region, MAP_FAILED);
      madvise(region, kRegionBytes, MADV_NOHUGEPAGE);  // 4 KB pages even where huge pages are the default
      regions_.push_back(region);
    }
    std::memset(regions_.back(), calls_ + 1, kRegionBytes);
    ++calls_;
  }
  int calls() const { return calls_; }

 private:
  int fresh_steps_, calls_ = 0;
  std::vector<void*> regions_;
};

BenchOptions options(int64_t warmup, int64_t repeats) {
  BenchOptions o;
  o.warmup = warmup;
  o.repeats = repeats;
  return o;
}

}  // namespace

TEST(BenchmarkWarmUp, GoesOnWhileStepsTouchNewMemoryThenTimesTheSteadyState) {
  FirstTouchSteps steps(3);
  const auto t = sparser::train::time_workload("first touch", options(1, 2), [&] { steps(); });
  EXPECT_EQ(t.warmup, 4) << "three faulting steps, then one that settled";
  EXPECT_EQ(steps.calls(), 6);
  EXPECT_EQ(t.repeats, 2);
  EXPECT_LT(t.page_faults_per_step, kSettledPageFaults);
}

TEST(BenchmarkWarmUp, StopsAfterTheExtraStepsAndReportsTheFaultsOfAStepThatNeverSettles) {
  FirstTouchSteps steps(1000);
  const auto t = sparser::train::time_workload("always fresh", options(2, 1), [&] { steps(); });
  EXPECT_EQ(t.warmup, 2 + kMaxExtraWarmup);
  EXPECT_GE(t.page_faults_per_step, static_cast<double>(kRegionBytes / 4096));
}

TEST(BenchmarkWarmUp, NoneWhenZeroIsAskedForSoTheFirstStepIsTimed) {
  FirstTouchSteps steps(1);
  const auto t = sparser::train::time_workload("first step", options(0, 3), [&] { steps(); });
  EXPECT_EQ(t.warmup, 0);
  EXPECT_EQ(steps.calls(), 3);
  // The first step's 2048 faults, over three timed steps.
  EXPECT_GE(t.page_faults_per_step, static_cast<double>(kRegionBytes / 4096) / 3);
}

TEST(BenchmarkWarmUp, InterleavedTurnsGoOnUntilEveryWorkloadHasSettled) {
  FirstTouchSteps quick(2), slow(5);
  const auto timing =
      sparser::train::time_interleaved(options(1, 2), {[&] { quick(); }, [&] { slow(); }});
  EXPECT_EQ(timing.warmup, 6);
  ASSERT_EQ(timing.page_faults.size(), 2u);
  for (const auto& faults : timing.page_faults) {
    ASSERT_EQ(faults.size(), 2u);
    for (auto f : faults) EXPECT_LE(f, kSettledPageFaults);
  }
  ASSERT_EQ(timing.seconds.size(), 2u);
  EXPECT_EQ(timing.seconds[0].size(), 2u);
}

TEST(BenchmarkMedian, OfAnEvenCountIsTheMeanOfTheTwoMiddleValues) {
  EXPECT_EQ(median({3.0}), 3.0);
  EXPECT_EQ(median({5.0, 1.0, 3.0}), 3.0);
  EXPECT_EQ(median({4.0, 1.0}), 2.5);
  EXPECT_EQ(median({8.0, 1.0, 2.0, 4.0}), 3.0);
}

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "util/memory_reuse.h"

namespace {

long minor_page_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

// A step's pattern: a few tensors of some MB (aligned as LibTorch allocates them),
// written, then all freed.
void one_step() {
  std::vector<void*> blocks;
  for (int i = 0; i < 3; ++i) {
    void* block = nullptr;
    ASSERT_EQ(posix_memalign(&block, 64, 4 << 20), 0);
    std::memset(block, i, 4 << 20);
    blocks.push_back(block);
  }
  for (void* block : blocks) std::free(block);
}

}  // namespace

TEST(MemoryReuse, FreedBlocksOfSomeMegabytesAreReusedWithoutPageFaults) {
  sparser::util::keep_freed_memory_for_reuse();
  for (int step = 0; step < 10; ++step) one_step();  // the heap settles
  const long before = minor_page_faults();
  for (int step = 0; step < 20; ++step) one_step();
  // glibc's defaults give the 12 MB back after every step: ~3000 faults per step.
  EXPECT_LT(minor_page_faults() - before, 200);
}

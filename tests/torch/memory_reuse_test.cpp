#include <c10/core/CPUAllocator.h>
#include <c10/core/alignment.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "train/benchmark.h"
#include "train/memory_reuse.h"

namespace {

// A training step's pattern: `count` tensors of `mib` MiB each, written, then all freed.
void one_step(int count, int64_t mib) {
  std::vector<torch::Tensor> tensors;
  for (int i = 0; i < count; ++i) tensors.push_back(torch::full({mib << 18}, static_cast<float>(i + 1)));
}

// Page faults of `steps` further steps, once the heap has settled.
int64_t faults_of_steps(int steps, int count, int64_t mib) {
  sparser::train::keep_freed_memory_for_reuse();
  for (int step = 0; step < 3; ++step) one_step(count, mib);
  const auto before = sparser::train::page_faults();
  for (int step = 0; step < steps; ++step) one_step(count, mib);
  return sparser::train::page_faults() - before;
}

}  // namespace

TEST(MemoryReuse, TensorsOfSomeMegabytesAreReusedWithoutPageFaults) {
  // glibc's defaults give the 12 MiB back after every step: ~3000 faults per step.
  EXPECT_LT(faults_of_steps(20, 3, 4), 200);
}

TEST(MemoryReuse, TensorsOverGlibcsLargestMmapThresholdAreReusedToo) {
  // 48 MiB, as the trunk's MLP activations. glibc maps any block over 32 MiB on its own
  // whatever its mmap threshold (~37 000 faults per step), and from the heap, blocks
  // from posix_memalign fragment it: the heap grew for six steps, faulting as it grew.
  EXPECT_LT(faults_of_steps(5, 3, 48), 200);
}

TEST(MemoryReuse, AFreedHeapTopIsKeptHoweverLarge) {
  // A trim threshold, even of 512 MiB, would give most of the 640 MiB back after every
  // step: ~100 000 faults per step.
  EXPECT_LT(faults_of_steps(3, 1, 640), 200);
}

TEST(MemoryReuse, TensorDataIsAlignedAndKeptThroughResizes) {
  sparser::train::keep_freed_memory_for_reuse();
  for (const int64_t n : {1, 3, 17, 1000, 1 << 20}) {
    auto t = torch::arange(n, torch::kFloat);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t.data_ptr()) % c10::gAlignment, 0u) << n;
    t.resize_({2 * n});  // a new block, the old contents copied
    EXPECT_TRUE(t.narrow(0, 0, n).equal(torch::arange(n, torch::kFloat))) << n;
  }
  EXPECT_EQ(torch::empty({0}).numel(), 0);
  auto* allocator = c10::GetCPUAllocator();
  void* raw = allocator->raw_allocate(100);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(raw) % c10::gAlignment, 0u);
  allocator->raw_deallocate(raw);
}

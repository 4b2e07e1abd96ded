#include "train/memory_reuse.h"

#include <c10/core/CPUAllocator.h>
#include <c10/core/alignment.h>
#include <malloc.h>
#include <torch/version.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace sparser::train {

namespace {

// The block malloc returned is stored just before the aligned data.
void free_aligned(void* data) {
  if (data != nullptr) std::free(static_cast<void**>(data)[-1]);
}

// CPU tensors from malloc, aligned by hand to LibTorch's alignment. LibTorch's default, posix_memalign, splits a
// few bytes off the front of every block; glibc keeps such fragments in its per-thread
// cache, where they stop freed neighbours from merging, so a step's large blocks no
// longer fit the freed space and the heap grows for several steps (three 48 MiB blocks
// a step: 912 MiB of heap for 144 MiB in use).
class HeapCpuAllocator final : public c10::Allocator {
 public:
// LibTorch 2.3 made allocate non-const and added copy_data.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
  c10::DataPtr allocate(size_t bytes) override { return allocate_aligned(bytes); }
  void copy_data(void* dest, const void* src, std::size_t count) const override { std::memcpy(dest, src, count); }
#else
  c10::DataPtr allocate(size_t bytes) const override { return allocate_aligned(bytes); }
#endif
  c10::DeleterFnPtr raw_deleter() const override { return &free_aligned; }

 private:
  static c10::DataPtr allocate_aligned(size_t bytes) {
    const c10::Device cpu(c10::DeviceType::CPU);
    if (bytes == 0) return {nullptr, nullptr, &free_aligned, cpu};
    TORCH_CHECK(bytes <= std::numeric_limits<size_t>::max() - c10::gAlignment, "cannot allocate ", bytes,
                " bytes");
    void* block = std::malloc(bytes + c10::gAlignment);
    TORCH_CHECK(block != nullptr, "out of memory: could not allocate ", bytes, " bytes of CPU memory");
    // malloc's blocks are 16-byte aligned: at least 16 bytes lie before the aligned data.
    const auto address = (reinterpret_cast<std::uintptr_t>(block) + c10::gAlignment) & ~(c10::gAlignment - 1);
    void* data = reinterpret_cast<void*>(address);
    static_cast<void**>(data)[-1] = block;
    return {data, data, &free_aligned, cpu};
  }
};

}  // namespace

void keep_freed_memory_for_reuse() {
  mallopt(M_MMAP_MAX, 0);         // no block mapped on its own: all from the heap
  mallopt(M_TRIM_THRESHOLD, -1);  // never give the heap's free top back (-1: no limit)
  static HeapCpuAllocator allocator;
  c10::SetCPUAllocator(&allocator, /*priority=*/1);
}

}  // namespace sparser::train

#pragma once
// Allocator settings for the training processes.

namespace sparser::util {

// glibc hands freed blocks of a few MB back to the system and takes them again on the
// next allocation, one page fault per 4 KB: tens of thousands of faults in every
// training step of the mask decoder (~10 % of a cached ViT-B step on a 2-core machine).
// After this call blocks up to 32 MiB are reused from the heap (a fixed mmap threshold,
// and up to 512 MiB kept free at its top); larger ones are still returned when freed.
// Call it first thing in main().
void keep_freed_memory_for_reuse();

}  // namespace sparser::util

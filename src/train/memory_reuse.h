#pragma once
// Memory settings for the training processes.

namespace sparser::train {

// By default glibc maps every block over 32 MiB (the trunk's MLP and qkv activations)
// on its own and unmaps it when freed, and gives freed memory at the heap's top back to
// the system: the next step takes it again at one page fault per 4 KB, 10–15 µs each on
// a virtual machine, hundreds of thousands of faults in every ViT training step. After
// this call every block comes from the heap, freed memory stays there for the next step
// (the heap is never trimmed), and CPU tensors are allocated so that freed neighbours
// merge. The resident memory then stays at the process's peak, as with a GPU's caching
// allocator. Call it first thing in main().
void keep_freed_memory_for_reuse();

}  // namespace sparser::train

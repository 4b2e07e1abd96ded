#include "util/memory_reuse.h"

#include <malloc.h>

namespace sparser::util {

void keep_freed_memory_for_reuse() {
  // Fixing the mmap threshold also stops glibc from adjusting both thresholds itself.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
}

}  // namespace sparser::util

// Heap reuse settings for glibc malloc; the reason is in allocator.h.
#include "common/allocator.h"

#include <cstdlib>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace mapgate {

bool keep_freed_memory_for_reuse() {
#if defined(__GLIBC__)
  if (std::getenv("MALLOC_MMAP_MAX_") != nullptr || std::getenv("MALLOC_TRIM_THRESHOLD_") != nullptr) return false;
  const int no_mmap = mallopt(M_MMAP_MAX, 0);
  // The largest value mallopt takes (an int); above any heap mapgate builds.
  const int never_trim = mallopt(M_TRIM_THRESHOLD, 0x7fffffff);
  return no_mmap == 1 && never_trim == 1;
#else
  return false;
#endif
}

}  // namespace mapgate

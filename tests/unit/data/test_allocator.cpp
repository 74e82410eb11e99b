// keep_freed_memory_for_reuse: a block far above glibc's mmap threshold comes from the
// heap, and after free() it stays there for the next allocation (glibc only; sanitizers
// replace malloc, so the test is skipped under them).
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include "common/allocator.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace mapgate {
namespace {

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MAPGATE_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define MAPGATE_TEST_ASAN 1
#endif

TEST(Allocator, LargeBlocksComeFromTheHeapAndStayForReuse) {
#if !defined(__GLIBC__) || defined(MAPGATE_TEST_ASAN)
  GTEST_SKIP() << "glibc malloc only";
#else
  if (std::getenv("MALLOC_MMAP_MAX_") || std::getenv("MALLOC_TRIM_THRESHOLD_")) GTEST_SKIP() << "user settings";
  ASSERT_TRUE(keep_freed_memory_for_reuse());
  constexpr std::size_t kBlock = std::size_t{96} << 20;  // 3x glibc's largest mmap threshold
  const std::size_t mapped_before = mallinfo2().hblkhd;
  void* block = std::malloc(kBlock);
  ASSERT_NE(block, nullptr);
  std::memset(block, 1, kBlock);
  EXPECT_EQ(mallinfo2().hblkhd, mapped_before);  // not an mmap of its own
  std::free(block);
  EXPECT_GE(mallinfo2().fordblks, kBlock);  // freed into the heap, not given back
#endif
}

}  // namespace
}  // namespace mapgate

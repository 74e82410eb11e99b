// Process-wide malloc settings for mapgate's executables (never called by the libraries:
// an application that links the engine keeps its own allocator policy).
#pragma once

namespace mapgate {

// glibc serves every block above a dynamic threshold (at most 32 MiB) with a fresh mmap
// and unmaps it on free, so each large tensor of a forward or backward pass page-faults
// anew: `mapgate eval` of 2,000 CIFAR-10 images at batch 256 took 4.4 million minor
// faults and 11 s of system time in a 13 s run (docs/perf.md). This keeps large blocks
// in the heap (no mmap) and never trims it, so freed tensors are reused: the process
// keeps its peak heap until it exits. No effect where malloc is not glibc's, or when the
// user sets MALLOC_MMAP_MAX_ or MALLOC_TRIM_THRESHOLD_ (their choice stands).
// Returns whether the settings were applied.
bool keep_freed_memory_for_reuse();

}  // namespace mapgate

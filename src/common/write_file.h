// Writing a whole file so that a crash, a kill or a full disk never leaves a half-written
// file at its path: the LibTorch side (checkpoints, config.json, metrics), the data layer
// (fetch) and the engine (weight files) all write through it.
#pragma once

#include <cstddef>
#include <string>

namespace mapgate {

// Writes bytes to `path` atomically: a temporary file in the same directory, fsync, rename.
// Throws Error naming the file and the failing step.
void write_file_atomic(const std::string& path, const void* data, std::size_t size);

}  // namespace mapgate

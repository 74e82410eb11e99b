// The source revision (`git describe --always --dirty` when built) that every run's
// config.json records. Defined in a file the build regenerates (cmake/revision.cmake),
// so that a new commit recompiles one file, not every file.
#pragma once

namespace mapgate {

const char* source_revision();

}  // namespace mapgate

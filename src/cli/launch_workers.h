// `mapgate train --nproc N`: starts N copies of this command line as the ranks of one
// data-parallel run on this machine (torchrun's environment: RANK, WORLD_SIZE,
// LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1, MASTER_PORT a free port), and
// waits for them. docs/scale.md.
#pragma once

namespace mapgate {

// Runs the workers to the end. The first one to fail (non-zero exit or a signal) stops
// the others (SIGTERM) and is named in the Error thrown: UsageError if it exited with a
// usage error (status 2), Error otherwise. SIGINT and SIGTERM sent to this process are
// passed on to the workers.
void launch_workers(int nproc);

}  // namespace mapgate

// `mapgate train --nproc N`: starts N copies of this command line as the ranks of one
// data-parallel run on this machine (torchrun's environment: RANK, WORLD_SIZE,
// LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1, MASTER_PORT a free port), and
// waits for them. docs/scale.md.
#pragma once

namespace mapgate {

// Runs the workers to the end. When one fails (non-zero exit or a signal), the others
// get 3 s to exit by themselves, then SIGTERM. The Error thrown names the worker that
// exited first with a usage error (status 2; then it is a UsageError), else the first
// that failed. SIGINT and SIGTERM sent to this process are passed on to the workers.
void launch_workers(int nproc);

}  // namespace mapgate

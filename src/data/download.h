// HTTPS download of one URL to a file with libcurl, for `mapgate data fetch`.
// Writes `path`.part and renames it into place only after a complete, successful transfer.
#pragma once

#include <string>

#include "data/fetch.h"  // LogFn

namespace mapgate {

struct DownloadOptions {
  long connect_timeout_s = 15;        // DNS + TCP + TLS handshake
  long low_speed_bytes_per_s = 1024;  // abort if slower than this ...
  long low_speed_time_s = 60;         // ... for this many seconds in a row
  double progress_interval_s = 5.0;   // how often progress goes to the LogFn
};

// Downloads `url` to `path` (following redirects). Throws Error naming the URL and
// curl's reason: unreachable host, HTTP status >= 400, timeout, stall, short write.
// On failure no `path`.part is left and an existing `path` is untouched.
void download_to_file(const std::string& url, const std::string& path, const LogFn& log,
                      const DownloadOptions& options = {});

}  // namespace mapgate

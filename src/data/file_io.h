// Whole-file reading, transparently gunzipping files that start with the gzip magic, under
// a size limit that the caller's format sets. Every failure throws mapgate::Error naming
// the file: missing, not a regular file, too large, unreadable, truncated gzip, gzip bomb.
// Also the path helpers the readers and `data fetch` share.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/regular_file.h"

namespace mapgate {

// Bytes of `path`, which must be a regular file (after symlinks; a FIFO or a device is an
// error, never a wait); if they start with 1f 8b they are gunzipped (all members), and a
// truncated or corrupt stream is an error, never a shorter result. The result holds at
// most limit.max_bytes: a larger file, or a stream that inflates past them (a gzip bomb),
// is an error naming the file, raised before more than that is held in memory.
std::vector<std::uint8_t> read_file_bytes(const std::string& path, const SizeLimit& limit);

// What read_file_bytes returns for a file holding `raw` (`path` for messages): `raw`
// itself, or gunzipped if it starts with 1f 8b, under the same limit. Empty input is an
// error. read_file_bytes is read + this; the fuzz targets call it directly.
std::vector<std::uint8_t> decode_file_bytes(std::vector<std::uint8_t> raw, const std::string& path,
                                            const SizeLimit& limit);

// `dir/name` ("name" when `dir` is empty; no doubled '/').
std::string join_path(const std::string& dir, const std::string& name);

// `dir/name` if it exists, else `dir/name.gz` if it exists, else throws Error naming both.
std::string find_plain_or_gz(const std::string& dir, const std::string& name);
// The same without the error: "" when neither exists.
std::string present_plain_or_gz(const std::string& dir, const std::string& name);

// True if `path` exists (after symlinks) and is not a directory.
bool file_exists(const std::string& path);

// create_directories (parents too; an existing directory is fine) with failure as Error
// "`subject`: cannot create directory "path": reason".
void make_directories(const std::string& path, const std::string& subject);

}  // namespace mapgate

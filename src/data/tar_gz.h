// Minimal .tar.gz extractor (zlib + ustar/GNU tar) for `mapgate data fetch`: regular
// files only, GNU long names ('L') and pax "path" records, no links or devices.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace mapgate {

// The most an archive may decompress to: 1 GiB (the CIFAR-10 tarballs `data fetch`
// extracts hold about 180 MB), so that a tar bomb stops there.
inline constexpr std::uint64_t kMaxTarGzBytes = std::uint64_t{1} << 30;

// Extracts the regular files of `archive` (gzip-compressed tar; a plain tar also works)
// under `out_dir`, creating subdirectories as needed. `want`, if given, receives each
// member's relative path ("cifar-10-batches-bin/data_batch_1.bin") and returns whether
// to write it; other members are skipped. Returns the relative paths written.
// Throws Error naming the archive for: a member path that is absolute or contains "..",
// a bad header checksum, a truncated or corrupt archive, one that is not a regular file,
// or one that decompresses to more than `max_bytes` (skipped members count too; the
// member being written is removed). Links and devices are skipped.
std::vector<std::string> extract_tar_gz(const std::string& archive, const std::string& out_dir,
                                        const std::function<bool(const std::string&)>& want = {},
                                        std::uint64_t max_bytes = kMaxTarGzBytes);

}  // namespace mapgate

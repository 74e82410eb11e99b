// Dataset readers on fixtures written by the tests themselves: good CIFAR-10/100 and IDX
// files (plain and .gz), then one broken variant per rule, each asserting that the error
// names the file and the rule. Must match the layouts in cifar.h and idx.h.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "../../support/files.h"
#include "../../support/byte_fixtures.h"
#include "common/error.h"
#include "common/write_file.h"
#include "data/cifar.h"
#include "data/dataset.h"
#include "data/file_io.h"
#include "data/idx.h"

namespace mapgate {
namespace {

using test::write_bytes;

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;
using test::cifar10_records;

// Fails unless `fn` throws E whose one-line message contains every substring.
template <typename E = Error>
void expect_error(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  try {
    fn();
  } catch (const E& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "message is not one line: " << msg;
    for (const std::string& p : parts) {
      EXPECT_NE(msg.find(p), std::string::npos) << "missing \"" << p << "\" in: " << msg;
    }
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw the wrong type: " << e.what();
    return;
  }
  ADD_FAILURE() << "did not throw";
}

// A limit far above every file these tests write.
const SizeLimit kAnyTestFile{std::uint64_t{1} << 26, "these tests take"};

Bytes read_plain(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void write_gz(const std::string& path, const Bytes& b) {
  gzFile g = gzopen(path.c_str(), "wb9");
  ASSERT_NE(g, nullptr) << path;
  if (!b.empty()) {
    ASSERT_EQ(gzwrite(g, b.data(), static_cast<unsigned>(b.size())), int(b.size()));
  }
  ASSERT_EQ(gzclose(g), Z_OK);
}

// CIFAR-100: coarse i % 20, fine (i * 11) % 100, same pixels.
Bytes cifar100_records(int n = 10) {
  Bytes b;
  for (int i = 0; i < n; ++i) {
    b.push_back(static_cast<std::uint8_t>(i % 20));
    b.push_back(static_cast<std::uint8_t>((i * 11) % 100));
    for (int c = 0; c < 3072; ++c) b.push_back(static_cast<std::uint8_t>((i * 7 + c) % 256));
  }
  return b;
}

void put_be32(Bytes& b, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(v >> s));
}

Bytes idx_images(std::uint32_t n, std::uint32_t rows = 28, std::uint32_t cols = 28,
                 std::uint32_t magic = 0x803) {
  Bytes b;
  put_be32(b, magic);
  put_be32(b, n);
  put_be32(b, rows);
  put_be32(b, cols);
  for (std::uint32_t i = 0; i < n * rows * cols; ++i) b.push_back(static_cast<std::uint8_t>(i % 251));
  return b;
}

Bytes idx_labels(std::uint32_t n, std::uint32_t magic = 0x801) {
  Bytes b;
  put_be32(b, magic);
  put_be32(b, n);
  for (std::uint32_t i = 0; i < n; ++i) b.push_back(static_cast<std::uint8_t>(i % 10));
  return b;
}

class Readers : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = ::testing::TempDir() + "mapgate_readers_" + std::to_string(::getpid()) + "_" +
           info->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  void write_cifar10(bool gz) {
    const Bytes r = cifar10_records();
    for (const char* f : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                          "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"}) {
      if (gz) write_gz(path(f) + ".gz", r);
      else write_bytes(path(f), r);
    }
  }

  void write_idx(bool gz, std::uint32_t train = 12, std::uint32_t test = 5) {
    auto put = [&](const std::string& name, const Bytes& b) {
      if (gz) write_gz(path(name) + ".gz", b);
      else write_bytes(path(name), b);
    };
    put("train-images-idx3-ubyte", idx_images(train));
    put("train-labels-idx1-ubyte", idx_labels(train));
    put("t10k-images-idx3-ubyte", idx_images(test));
    put("t10k-labels-idx1-ubyte", idx_labels(test));
  }

  std::string dir_;
};

void expect_cifar10_fixture(const DatasetSplits& s) {
  ASSERT_EQ(s.train.size(), 50u);
  ASSERT_EQ(s.test.size(), 10u);
  for (const Dataset* d : {&s.train, &s.test}) {
    EXPECT_EQ(d->name, "cifar10");
    EXPECT_EQ(d->channels, 3);
    EXPECT_EQ(d->height, 32);
    EXPECT_EQ(d->width, 32);
    EXPECT_EQ(d->num_classes, 10);
    ASSERT_EQ(d->images.size(), d->size() * 3072);
    for (std::size_t k = 0; k < d->size(); ++k) {
      const int i = static_cast<int>(k % 10);  // record index within its file
      ASSERT_EQ(d->labels[k], i % 10);
      const std::uint8_t* img = d->image(k);
      for (int c = 0; c < 3072; ++c) ASSERT_EQ(img[c], (i * 7 + c) % 256) << k << " " << c;
    }
  }
  EXPECT_EQ(s.train.class_names, cifar10_standard_names());
}

TEST_F(Readers, Cifar10Plain) {
  write_cifar10(/*gz=*/false);
  expect_cifar10_fixture(load_dataset("cifar10", dir_));
}

TEST_F(Readers, Cifar10Gz) {
  write_cifar10(/*gz=*/true);
  expect_cifar10_fixture(load_dataset("cifar10", dir_));
}

// Evaluation reads the test split alone: with every training file gone, load_test_split
// still gives the whole test split and load_dataset names the first missing file.
TEST_F(Readers, TestSplitOpensNoTrainingFile) {
  write_cifar10(/*gz=*/true);
  write_bytes(path("train.bin"), cifar100_records(10));  // a second dataset beside it
  write_gz(path("test.bin.gz"), cifar100_records(4));
  write_idx(/*gz=*/false, 12, 5);
  for (const char* f : {"data_batch_1.bin.gz", "data_batch_2.bin.gz", "data_batch_3.bin.gz",
                        "data_batch_4.bin.gz", "data_batch_5.bin.gz", "train.bin",
                        "train-images-idx3-ubyte", "train-labels-idx1-ubyte"}) {
    fs::remove(path(f));
  }
  const Dataset cifar10 = load_test_split("cifar10", dir_);
  EXPECT_EQ(cifar10.size(), 10u);
  EXPECT_EQ(cifar10.class_names, cifar10_standard_names());
  EXPECT_EQ(cifar10.image(3)[5], (3 * 7 + 5) % 256);
  EXPECT_EQ(load_test_split("cifar100", dir_).size(), 4u);
  EXPECT_EQ(load_test_split("mnist", dir_).size(), 5u);
  expect_error([&] { load_dataset("cifar10", dir_); }, {"data_batch_1.bin"});
  expect_error([&] { load_dataset("mnist", dir_); }, {"train-images-idx3-ubyte"});
}

TEST_F(Readers, Cifar10MetaNames) {
  write_cifar10(false);
  write_bytes(path("batches.meta.txt"), Bytes{'a', '\n', 'b', '\r', '\n', 'c', '\n', 'd', '\n',
                                              'e', '\n', 'f', '\n', 'g', '\n', 'h', '\n', 'i',
                                              '\n', 'j', '\n', '\n'});
  DatasetSplits s = load_dataset("cifar10", dir_);
  EXPECT_EQ(s.train.class_names,
            (std::vector<std::string>{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}));
  EXPECT_EQ(s.test.class_names, s.train.class_names);
}

TEST_F(Readers, Cifar10MetaWrongCount) {
  write_cifar10(false);
  write_bytes(path("batches.meta.txt"), Bytes{'a', '\n', 'b', '\n'});
  expect_error([&] { load_dataset("cifar10", dir_); },
               {"cifar10 \"" + path("batches.meta.txt") + "\"", "2 class names, expected 10"});
}

TEST_F(Readers, Cifar10TruncatedRecord) {
  write_cifar10(false);
  Bytes r = cifar10_records();
  r.resize(r.size() - 5);
  write_bytes(path("data_batch_3.bin"), r);
  expect_error([&] { load_dataset("cifar10", dir_); },
               {"cifar10 \"" + path("data_batch_3.bin") + "\": 30725 bytes is not a multiple of "
                "3073 (1 label + 3072 pixels)"});
}

TEST_F(Readers, Cifar10TruncatedRecordInsideGz) {
  write_cifar10(true);
  Bytes r = cifar10_records();
  r.pop_back();
  write_gz(path("test_batch.bin.gz"), r);
  expect_error([&] { load_dataset("cifar10", dir_); },
               {"\"" + path("test_batch.bin.gz") + "\"", "30729 bytes is not a multiple of 3073"});
}

TEST_F(Readers, Cifar10EmptyFile) {
  write_cifar10(false);
  write_bytes(path("test_batch.bin"), {});
  expect_error([&] { load_dataset("cifar10", dir_); },
               {"\"" + path("test_batch.bin") + "\"", "is empty"});
}

TEST_F(Readers, Cifar10EmptyInsideGz) {
  write_cifar10(true);
  write_gz(path("data_batch_2.bin.gz"), {});
  expect_error([&] { load_dataset("cifar10", dir_); },
               {"cifar10 \"" + path("data_batch_2.bin.gz") + "\"", "is empty"});
}

TEST_F(Readers, Cifar10BadLabel) {
  write_cifar10(false);
  Bytes r = cifar10_records();
  r[7 * 3073] = 12;
  write_bytes(path("test_batch.bin"), r);
  expect_error([&] { load_dataset("cifar10", dir_); },
               {"cifar10 \"" + path("test_batch.bin") + "\": record 7 has label 12, expected 0..9"});
}

TEST_F(Readers, Cifar10TruncatedGzip) {
  write_cifar10(true);
  Bytes gz = read_plain(path("data_batch_1.bin.gz"));
  ASSERT_GT(gz.size(), 40u);
  gz.resize(gz.size() / 2);
  write_bytes(path("data_batch_1.bin.gz"), gz);
  expect_error([&] { load_dataset("cifar10", dir_); },
               {"gzip \"" + path("data_batch_1.bin.gz") + "\": truncated or corrupt stream ("});
}

TEST_F(Readers, Cifar10GzipMissingTrailer) {
  // Every deflate block present, only the 8-byte CRC/size trailer cut off.
  write_cifar10(true);
  Bytes gz = read_plain(path("data_batch_5.bin.gz"));
  gz.resize(gz.size() - 8);
  write_bytes(path("data_batch_5.bin.gz"), gz);
  expect_error([&] { load_dataset("cifar10", dir_); },
               {"gzip \"" + path("data_batch_5.bin.gz") + "\": truncated or corrupt stream"});
}

TEST_F(Readers, Cifar10CorruptGzip) {
  write_cifar10(true);
  Bytes gz = read_plain(path("data_batch_2.bin.gz"));
  for (std::size_t i = 12; i < gz.size() - 8; ++i) gz[i] ^= 0x5a;
  write_bytes(path("data_batch_2.bin.gz"), gz);
  expect_error([&] { load_dataset("cifar10", dir_); },
               {"gzip \"" + path("data_batch_2.bin.gz") + "\": truncated or corrupt stream"});
}

TEST_F(Readers, Cifar10MissingFile) {
  write_cifar10(false);
  fs::remove(path("data_batch_4.bin"));
  expect_error([&] { load_dataset("cifar10", dir_); },
               {"cifar10", "\"" + path("data_batch_4.bin") + "\"",
                "\"" + path("data_batch_4.bin.gz") + "\"", "missing"});
}

TEST_F(Readers, Cifar10MissingDirectory) {
  expect_error([&] { load_dataset("cifar10", path("nowhere")); },
               {"\"" + path("nowhere") + "\"", "does not exist"});
}

TEST_F(Readers, Cifar100Good) {
  write_bytes(path("train.bin"), cifar100_records(10));
  write_gz(path("test.bin.gz"), cifar100_records(4));
  DatasetSplits s = load_dataset("cifar100", dir_);
  ASSERT_EQ(s.train.size(), 10u);
  ASSERT_EQ(s.test.size(), 4u);
  EXPECT_EQ(s.train.name, "cifar100");
  EXPECT_EQ(s.train.num_classes, 100);
  ASSERT_EQ(s.train.class_names.size(), 100u);
  EXPECT_EQ(s.train.class_names[42], "42");
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(s.train.labels[i], (i * 11) % 100);
    EXPECT_EQ(s.train.image(i)[0], (i * 7) % 256);
    EXPECT_EQ(s.train.image(i)[3071], (i * 7 + 3071) % 256);
  }
}

TEST_F(Readers, Cifar100BadFineLabel) {
  Bytes r = cifar100_records(10);
  r[3 * 3074 + 1] = 100;
  write_bytes(path("train.bin"), r);
  write_bytes(path("test.bin"), cifar100_records(4));
  expect_error([&] { load_dataset("cifar100", dir_); },
               {"cifar100 \"" + path("train.bin") + "\": record 3 has fine label 100, expected 0..99"});
}

TEST_F(Readers, Cifar100BadSize) {
  write_bytes(path("train.bin"), cifar100_records(10));
  write_bytes(path("test.bin"), cifar10_records(4));  // 3073-byte records
  expect_error([&] { load_dataset("cifar100", dir_); },
               {"cifar100 \"" + path("test.bin") + "\": 12292 bytes is not a multiple of 3074"});
}

TEST_F(Readers, IdxGood) {
  write_idx(false);
  for (const char* name : {"mnist", "fashion-mnist"}) {
    DatasetSplits s = load_dataset(name, dir_);
    ASSERT_EQ(s.train.size(), 12u);
    ASSERT_EQ(s.test.size(), 5u);
    EXPECT_EQ(s.train.name, name);
    EXPECT_EQ(s.train.channels, 1);
    EXPECT_EQ(s.train.height, 28);
    EXPECT_EQ(s.train.width, 28);
    EXPECT_EQ(s.train.num_classes, 10);
    ASSERT_EQ(s.train.images.size(), 12u * 784);
    for (std::size_t i = 0; i < s.train.images.size(); ++i) {
      ASSERT_EQ(s.train.images[i], i % 251) << i;
    }
    for (std::size_t i = 0; i < 12; ++i) EXPECT_EQ(s.train.labels[i], i % 10);
  }
  EXPECT_EQ(load_dataset("fashion-mnist", dir_).train.class_names[9], "Ankle boot");
  EXPECT_EQ(load_dataset("mnist", dir_).train.class_names[9], "9");
}

TEST_F(Readers, IdxGz) {
  write_idx(true);
  DatasetSplits s = load_dataset("fashion-mnist", dir_);
  EXPECT_EQ(s.train.size(), 12u);
  EXPECT_EQ(s.test.size(), 5u);
  EXPECT_EQ(s.test.images[100], 100 % 251);
}

TEST_F(Readers, IdxBadMagic) {
  write_idx(false);
  write_bytes(path("train-images-idx3-ubyte"), idx_images(12, 28, 28, /*magic=*/0x801));
  expect_error([&] { load_dataset("mnist", dir_); },
               {"idx \"" + path("train-images-idx3-ubyte") +
                "\": magic 0x00000801, expected 0x00000803 (images)"});
  write_idx(false);
  write_bytes(path("t10k-labels-idx1-ubyte"), idx_images(5));  // images where labels belong
  expect_error([&] { load_dataset("mnist", dir_); },
               {"idx \"" + path("t10k-labels-idx1-ubyte") +
                "\": magic 0x00000803, expected 0x00000801 (labels)"});
}

TEST_F(Readers, IdxBadDims) {
  write_idx(false);
  write_bytes(path("t10k-images-idx3-ubyte"), idx_images(5, 32, 32));
  expect_error([&] { load_dataset("mnist", dir_); },
               {"idx \"" + path("t10k-images-idx3-ubyte") + "\": images are 32x32, expected 28x28"});
  write_bytes(path("t10k-images-idx3-ubyte"), idx_images(0));
  expect_error([&] { load_dataset("mnist", dir_); },
               {"\"" + path("t10k-images-idx3-ubyte") + "\"", "0 images"});
}

TEST_F(Readers, IdxSizeMismatch) {
  write_idx(false);
  Bytes b = idx_images(12);
  b.pop_back();
  write_bytes(path("train-images-idx3-ubyte"), b);
  expect_error([&] { load_dataset("mnist", dir_); },
               {"idx \"" + path("train-images-idx3-ubyte") + "\": 9423 bytes",
                "12 images of 28x28", "exactly 9424"});
  b = idx_images(12);
  b.push_back(0);
  write_bytes(path("train-images-idx3-ubyte"), b);
  expect_error([&] { load_dataset("mnist", dir_); }, {"9425 bytes", "exactly 9424"});
  write_idx(false);
  Bytes l = idx_labels(12);
  l.push_back(3);
  write_bytes(path("train-labels-idx1-ubyte"), l);
  expect_error([&] { load_dataset("mnist", dir_); },
               {"idx \"" + path("train-labels-idx1-ubyte") + "\": 21 bytes", "exactly 20"});
  write_bytes(path("train-labels-idx1-ubyte"), Bytes{0, 0, 8});
  expect_error([&] { load_dataset("mnist", dir_); },
               {"idx \"" + path("train-labels-idx1-ubyte") + "\": 3 bytes, too short"});
}

TEST_F(Readers, IdxLabelCountMismatch) {
  write_idx(false);
  write_bytes(path("t10k-labels-idx1-ubyte"), idx_labels(4));
  expect_error([&] { load_dataset("fashion-mnist", dir_); },
               {"idx \"" + path("t10k-labels-idx1-ubyte") + "\": 4 labels, but \"" +
                path("t10k-images-idx3-ubyte") + "\" has 5 images"});
}

TEST_F(Readers, IdxBadLabel) {
  write_idx(false);
  Bytes l = idx_labels(12);
  l[8 + 6] = 10;
  write_bytes(path("train-labels-idx1-ubyte"), l);
  expect_error([&] { load_dataset("mnist", dir_); },
               {"idx \"" + path("train-labels-idx1-ubyte") + "\": record 6 has label 10, expected 0..9"});
}

TEST_F(Readers, IdxMissingFile) {
  write_idx(false);
  fs::remove(path("t10k-labels-idx1-ubyte"));
  expect_error([&] { load_dataset("mnist", dir_); },
               {"\"" + path("t10k-labels-idx1-ubyte") + "\"", "missing"});
}

TEST_F(Readers, UnknownDataset) {
  expect_error<UsageError>(
      [&] { load_dataset("foo", dir_); },
      {"--dataset \"foo\": unknown; expected one of cifar10, cifar100, mnist, fashion-mnist"});
  EXPECT_EQ(dataset_names(),
            (std::vector<std::string>{"cifar10", "cifar100", "mnist", "fashion-mnist"}));
}

TEST_F(Readers, Head) {
  write_cifar10(false);
  DatasetSplits s = load_dataset("cifar10", dir_);
  Dataset h = s.train.head(3);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h.images.size(), 3u * 3072);
  EXPECT_EQ(h.labels[2], 2);
  EXPECT_EQ(h.image(2)[5], (2 * 7 + 5) % 256);
  EXPECT_EQ(h.class_names, s.train.class_names);
  EXPECT_EQ(s.train.head(0).size(), 50u);
  EXPECT_EQ(s.train.head(500).size(), 50u);
}

TEST_F(Readers, ReadFileBytesMultiMemberGzip) {
  const Bytes a = {'h', 'e', 'l', 'l', 'o', ' '}, b = {'w', 'o', 'r', 'l', 'd'};
  write_gz(path("a.gz"), a);
  write_gz(path("b.gz"), b);
  Bytes both = read_plain(path("a.gz"));
  Bytes second = read_plain(path("b.gz"));
  both.insert(both.end(), second.begin(), second.end());
  write_bytes(path("ab.gz"), both);
  Bytes expect = a;
  expect.insert(expect.end(), b.begin(), b.end());
  EXPECT_EQ(read_file_bytes(path("ab.gz"), kAnyTestFile), expect);

  // Bytes after the last member that are not another member are an error, not ignored.
  both.push_back('x');
  write_bytes(path("abx.gz"), both);
  expect_error([&] { read_file_bytes(path("abx.gz"), kAnyTestFile); },
               {"gzip \"" + path("abx.gz") + "\"", "trailing"});
}

TEST_F(Readers, ReadFileBytesPlainAndErrors) {
  write_bytes(path("plain"), Bytes{0x1f, 1, 2});
  EXPECT_EQ(read_file_bytes(path("plain"), kAnyTestFile), (Bytes{0x1f, 1, 2}));
  expect_error([&] { read_file_bytes(path("absent"), kAnyTestFile); },
               {"\"" + path("absent") + "\"", "No such file"});
  expect_error([&] { read_file_bytes(dir_, kAnyTestFile); }, {"\"" + dir_ + "\"", "directory"});
  write_bytes(path("empty"), {});
  expect_error([&] { read_file_bytes(path("empty"), kAnyTestFile); }, {"\"" + path("empty") + "\"", "is empty"});
  write_bytes(path("magic_only.gz"), Bytes{0x1f, 0x8b});
  expect_error([&] { read_file_bytes(path("magic_only.gz"), kAnyTestFile); },
               {"gzip \"" + path("magic_only.gz") + "\": truncated or corrupt stream"});
  EXPECT_TRUE(file_exists(path("plain")));
  EXPECT_FALSE(file_exists(path("absent")));
  EXPECT_FALSE(file_exists(dir_));
}

TEST_F(Readers, ReadFileBytesLargeGzip) {
  // Several MB so the output buffer has to grow past its first size.
  Bytes big(5'000'000);
  std::uint32_t x = 12345;
  for (auto& v : big) v = static_cast<std::uint8_t>((x = x * 1103515245u + 12345u) >> 24);
  write_gz(path("big.gz"), big);
  EXPECT_EQ(read_file_bytes(path("big.gz"), kAnyTestFile), big);
}

TEST_F(Readers, WriteFileAtomic) {
  const std::string p = path("out.bin");
  const Bytes one = {1, 2, 3}, two = {9, 8};
  write_file_atomic(p, one.data(), one.size());
  EXPECT_EQ(read_plain(p), one);
  write_file_atomic(p, two.data(), two.size());
  EXPECT_EQ(read_plain(p), two);
  write_file_atomic(p, nullptr, 0);
  EXPECT_TRUE(read_plain(p).empty());
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1)
      << "a temporary file was left behind";

  const std::string bad = path("no_such_dir/out.bin");
  expect_error([&] { write_file_atomic(bad, one.data(), one.size()); },
               {"\"" + bad + "\"", "No such file"});
  // Rename onto a directory fails after the temporary was written: it must be removed.
  fs::create_directories(path("adir/sub"));
  expect_error([&] { write_file_atomic(path("adir"), one.data(), one.size()); },
               {"\"" + path("adir") + "\"", "rename"});
  EXPECT_FALSE(fs::exists(path("adir") + ".tmp." + std::to_string(::getpid())));
}

// Real Fashion-MNIST, where the Debian package (or $MAPGATE_FASHION_DATA) provides it.
TEST(RealData, FashionMnist) {
  const char* env = std::getenv("MAPGATE_FASHION_DATA");
  std::string dir = env ? env : "/usr/share/datasets/fashion-mnist";
  if (!file_exists(dir + "/train-images-idx3-ubyte.gz") &&
      !file_exists(dir + "/train-images-idx3-ubyte")) {
    GTEST_SKIP() << "no Fashion-MNIST in " << dir;
  }
  DatasetSplits s = load_dataset("fashion-mnist", dir);
  ASSERT_EQ(s.train.size(), 60000u);
  ASSERT_EQ(s.test.size(), 10000u);
  std::vector<int> train(10), test(10);
  for (auto l : s.train.labels) ++train.at(l);
  for (auto l : s.test.labels) ++test.at(l);
  for (int c = 0; c < 10; ++c) {
    EXPECT_EQ(train[c], 6000);
    EXPECT_EQ(test[c], 1000);
  }
}

}  // namespace
}  // namespace mapgate

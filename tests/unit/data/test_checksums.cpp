// Digests against published test vectors, and `data verify` on a written fixture
// (counts per class, checksums that must not match) and, when $MAPGATE_DATA points at
// it, on the real CIFAR-10 files (official counts, all six checksums matching).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../../support/byte_fixtures.h"
#include "common/error.h"
#include "data/checksums.h"
#include "data/file_io.h"

namespace mapgate {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;
using test::cifar10_records;

Bytes text(const std::string& s) { return Bytes(s.begin(), s.end()); }

TEST(Checksums, KnownVectors) {
  const Bytes abc = text("abc");
  EXPECT_EQ(sha256_hex(abc.data(), abc.size()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(md5_hex(abc.data(), abc.size()), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(sha1_hex(abc.data(), abc.size()), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(sha256_hex(nullptr, 0),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(md5_hex(nullptr, 0), "d41d8cd98f00b204e9800998ecf8427e");
  const Bytes two_blocks =
      text("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq");
  EXPECT_EQ(sha256_hex(two_blocks.data(), two_blocks.size()),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Checksums, OfficialTable) {
  const auto& files = cifar10_official_files();
  ASSERT_EQ(files.size(), 6u);
  const char* names[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                         "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
  for (std::size_t i = 0; i < files.size(); ++i) {
    EXPECT_EQ(std::string(files[i].name), names[i]);
    EXPECT_EQ(std::string(files[i].sha256).size(), 64u);
    EXPECT_EQ(std::string(files[i].md5).size(), 32u);
  }
}

class Verify : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = ::testing::TempDir() + "mapgate_checksums_" + std::to_string(::getpid()) + "_" +
           info->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(const std::string& name, const Bytes& b) {
    std::ofstream f(dir_ + "/" + name, std::ios::binary);
    f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    ASSERT_TRUE(f.good());
  }

  std::string dir_;
};

TEST_F(Verify, Cifar10Fixture) {
  const Bytes r = cifar10_records();
  for (const auto& f : cifar10_official_files()) write(f.name, r);
  VerifyReport v = verify_dataset("cifar10", dir_);
  EXPECT_EQ(v.dataset, "cifar10");
  EXPECT_EQ(v.train, 50u);
  EXPECT_EQ(v.test, 10u);
  EXPECT_EQ(v.classes, 10);
  EXPECT_EQ(v.train_per_class, std::vector<std::size_t>(10, 5));
  EXPECT_EQ(v.test_per_class, std::vector<std::size_t>(10, 1));
  ASSERT_EQ(v.class_names.size(), 10u);
  EXPECT_EQ(v.class_names[0], "airplane");
  ASSERT_EQ(v.files.size(), 6u);
  const std::string expected = sha256_hex(r.data(), r.size());
  for (std::size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(v.files[i].name, cifar10_official_files()[i].name);
    EXPECT_EQ(v.files[i].path, dir_ + "/" + v.files[i].name);
    EXPECT_EQ(v.files[i].sha256, expected);
    EXPECT_FALSE(v.files[i].matches);
  }
  ASSERT_TRUE(v.checksums_match.has_value());
  EXPECT_FALSE(*v.checksums_match);
}

TEST_F(Verify, BadFileStillThrows) {
  Bytes r = cifar10_records();
  for (const auto& f : cifar10_official_files()) write(f.name, r);
  r[0] = 10;
  write("data_batch_2.bin", r);
  try {
    verify_dataset("cifar10", dir_);
    ADD_FAILURE() << "did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("data_batch_2.bin\": record 0 has label 10"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(Verify, IdxHasNoChecksums) {
  auto be32 = [](Bytes& b, std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(v >> s));
  };
  for (const char* split : {"train", "t10k"}) {
    const std::uint32_t n = split[0] == 't' && split[1] == 'r' ? 20 : 10;
    Bytes img, lab;
    be32(img, 0x803);
    be32(img, n);
    be32(img, 28);
    be32(img, 28);
    img.resize(img.size() + n * 784, 7);
    be32(lab, 0x801);
    be32(lab, n);
    for (std::uint32_t i = 0; i < n; ++i) lab.push_back(static_cast<std::uint8_t>(i % 10));
    write(std::string(split) + "-images-idx3-ubyte", img);
    write(std::string(split) + "-labels-idx1-ubyte", lab);
  }
  VerifyReport v = verify_dataset("fashion-mnist", dir_);
  EXPECT_EQ(v.train, 20u);
  EXPECT_EQ(v.test, 10u);
  EXPECT_EQ(v.classes, 10);
  EXPECT_EQ(v.train_per_class, std::vector<std::size_t>(10, 2));
  EXPECT_EQ(v.test_per_class, std::vector<std::size_t>(10, 1));
  EXPECT_EQ(v.class_names[0], "T-shirt/top");
  EXPECT_TRUE(v.files.empty());
  EXPECT_FALSE(v.checksums_match.has_value());
}

TEST(VerifyUsage, UnknownDataset) {
  EXPECT_THROW(verify_dataset("foo", "."), UsageError);
}

// The real CIFAR-10 (gzipped batches), when $MAPGATE_DATA holds it.
TEST(RealData, Cifar10Verify) {
  const char* env = std::getenv("MAPGATE_DATA");
  if (!env || !file_exists(std::string(env) + "/data_batch_1.bin.gz")) {
    GTEST_SKIP() << "set MAPGATE_DATA to a directory with data_batch_1.bin.gz";
  }
  VerifyReport v = verify_dataset("cifar10", env);
  EXPECT_EQ(v.train, 50000u);
  EXPECT_EQ(v.test, 10000u);
  EXPECT_EQ(v.classes, 10);
  EXPECT_EQ(v.train_per_class, std::vector<std::size_t>(10, 5000));
  EXPECT_EQ(v.test_per_class, std::vector<std::size_t>(10, 1000));
  ASSERT_EQ(v.files.size(), 6u);
  for (const FileCheck& f : v.files) EXPECT_TRUE(f.matches) << f.name << " " << f.sha256;
  ASSERT_TRUE(v.checksums_match.has_value());
  EXPECT_TRUE(*v.checksums_match);
}

}  // namespace
}  // namespace mapgate

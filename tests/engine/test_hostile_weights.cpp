// The weight-file reader on hostile files the tests make themselves (docs/reliability.md,
// "Hostile files"): a FIFO or a device given as the file, a file over the size limit, a
// header nested a million levels deep, newlines in a tensor name or a path. Each ends in
// one line naming the file; each call runs in a guarded child process
// (tests/support/guarded_call.h), so a regression fails a test instead of hanging or
// crashing the run.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "../support/files.h"
#include "../support/guarded_call.h"
#include "common/error.h"
#include "engine/weights.h"

namespace mapgate {
namespace {

using test::write_bytes;

namespace fs = std::filesystem;
using test::expect_guarded_error;

DenseNetConfig tiny() {
  DenseNetConfig c;
  c.depth = 7;
  c.growth = 3;
  c.num_classes = 4;
  c.in_channels = 2;
  c.image_size = 8;
  c.gated = true;
  return c;
}

void u32(std::string& s, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

class HostileWeightFile : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = ::testing::TempDir() + "mapgate_hostile_weights_" + std::to_string(::getpid()) + "_" + info->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = dir_ + "/w.bin";
    write_weights(path_, random_weights(tiny(), /*seed=*/5));
    good_ = read_bytes(path_);
    std::uint32_t size = 0;
    for (int i = 0; i < 4; ++i) size |= std::uint32_t{static_cast<unsigned char>(good_[12 + i])} << (8 * i);
    header_ = good_.substr(16, size);
    tensors_ = good_.substr(16 + size);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The good file with its header replaced by `header` and `extra` appended.
  std::string with_header(const std::string& header, const std::string& extra = "") const {
    std::string out = good_.substr(0, 12);
    u32(out, static_cast<std::uint32_t>(header.size()));
    return out + header + tensors_ + extra;
  }

  std::string dir_, path_, good_, header_, tensors_;
};

TEST_F(HostileWeightFile, FifoIsRefusedWithoutWaiting) {
  const std::string fifo = dir_ + "/fifo.bin";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  expect_guarded_error([&] { read_weights(fifo); },
                       {"weights \"" + fifo + "\": is a FIFO (named pipe), expected a regular file"});
}

// /dev/zero grew memory until std::bad_alloc, which named no file.
TEST_F(HostileWeightFile, DevicesAndDirectoriesAreRefused) {
  for (const char* device : {"/dev/zero", "/dev/urandom"})
    expect_guarded_error([&] { read_weights(device); },
                         {std::string("weights \"") + device + "\": is a character device, expected a regular file"});
  fs::create_symlink("/dev/zero", dir_ + "/link.bin");
  expect_guarded_error([&] { read_weights(dir_ + "/link.bin"); }, {"link.bin\": is a character device"});
  expect_guarded_error([&] { read_weights(dir_); }, {"weights \"" + dir_ + "\": is a directory"});
  // A symlink to a good weight file is followed.
  fs::create_symlink(path_, dir_ + "/good_link.bin");
  EXPECT_EQ(read_weights(dir_ + "/good_link.bin").tensors.size(), expected_tensors(tiny()).size());
}

// A sparse file one byte over the limit (no disk space used): refused from its size.
TEST_F(HostileWeightFile, FileOverTheLimitIsRefusedUnread) {
  ASSERT_EQ(::truncate(path_.c_str(), static_cast<off_t>(kMaxWeightFileBytes + 1)), 0);
  expect_guarded_error([&] { read_weights(path_); },
                       {"weights \"" + path_ + "\": 1073741825 bytes, more than the 1073741824 bytes this reader takes"});
}

// A million levels crashed the reader (stack overflow while its error dump()ed the value).
TEST_F(HostileWeightFile, HeaderNestedAMillionLevelsIsRefused) {
  const std::string deep = std::string(1'000'000, '[') + std::string(1'000'000, ']');
  for (const std::string& header :
       {deep, R"({"format":"mapgate-weights","architecture":{"depth":)" + deep + "}}"}) {
    write_bytes(path_, with_header(header));
    expect_guarded_error([&] { read_weights(path_); },
                         {"weights \"" + path_ + "\": header nests arrays and objects deeper than 64 levels"});
  }
}

TEST_F(HostileWeightFile, HeaderWithinTheDepthLimitStillLoads) {
  const std::string nested = std::string(60, '[') + std::string(60, ']');
  write_bytes(path_, with_header(header_.substr(0, header_.size() - 1) + ",\"note\":" + nested + "}"));
  EXPECT_EQ(read_weights(path_).tensors.size(), expected_tensors(tiny()).size());
}

TEST_F(HostileWeightFile, LongHeaderValueIsCutInTheMessage) {
  std::string header = header_;
  const auto at = header.find("\"depth\":7");
  ASSERT_NE(at, std::string::npos);
  header.replace(at, 9, "\"depth\":\"" + std::string(100'000, 'x') + "\"");
  write_bytes(path_, with_header(header));
  const auto r = test::guarded_call([&] { read_weights(path_); });
  ASSERT_EQ(r.kind, test::GuardedResult::kError) << r.message;
  EXPECT_NE(r.message.find("header \"architecture.depth\" is \"xxx"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("xxx..., expected an integer"), std::string::npos) << r.message;
  EXPECT_LT(r.message.size(), 400u) << r.message;
}

// A name read from the file is quoted with its newline escaped: one line.
TEST_F(HostileWeightFile, NewlineInATensorNameStaysOnOneLine) {
  std::string header = header_;
  const auto at = header.find("\"tensor_count\":");
  ASSERT_NE(at, std::string::npos);
  const auto end = header.find_first_of(",}", at);
  const int count = std::stoi(header.substr(at + 15, end - at - 15));
  header.replace(at, end - at, "\"tensor_count\":" + std::to_string(count + 1));
  std::string extra;
  const std::string name = "stem.weight\nmapgate: all good";
  u32(extra, static_cast<std::uint32_t>(name.size()));
  extra += name;
  u32(extra, 1);  // rank 1
  u32(extra, 1);  // shape [1]
  extra += std::string(4, '\0');
  write_bytes(path_, with_header(header, extra));
  expect_guarded_error([&] { read_weights(path_); },
                       {"unexpected tensor \"stem.weight\\nmapgate: all good\""});
}

// nlohmann's parse errors quote the text they stopped at with control bytes spelled out.
TEST_F(HostileWeightFile, RawNewlineInTheHeaderStaysOnOneLine) {
  write_bytes(path_, with_header("{\"format\":\"mapgate\nweights\"}"));
  expect_guarded_error([&] { read_weights(path_); }, {"weights \"" + path_ + "\": header is not valid JSON ("});
}

TEST_F(HostileWeightFile, NewlineInThePathStaysOnOneLine) {
  const std::string path = dir_ + "/two\nlines.bin";
  write_bytes(path, good_.substr(0, 10));
  expect_guarded_error([&] { read_weights(path); }, {"/two\\nlines.bin\": truncated"});
}

}  // namespace
}  // namespace mapgate

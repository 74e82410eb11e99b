// Weight file (docs/weight-format.md): round trip, byte layout written independently here,
// and malformed files (truncated, bad magic, other version, missing or misshaped tensor,
// trailing bytes) rejected with one line that names the file.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../support/files.h"
#include "common/error.h"
#include "engine/weights.h"

namespace mapgate {
namespace {

using test::write_bytes;

#define EXPECT_THROWS_WITH(stmt, substring)                                          \
  do {                                                                               \
    try {                                                                            \
      stmt;                                                                          \
      ADD_FAILURE() << "expected mapgate::Error containing: " << (substring);        \
    } catch (const Error& e) {                                                       \
      EXPECT_NE(std::string(e.what()).find(substring), std::string::npos) << e.what(); \
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();    \
    }                                                                                \
  } while (0)

DenseNetConfig tiny(bool gated, bool bc = false) {
  DenseNetConfig c;
  c.depth = bc ? 10 : 7;
  c.bc = bc;
  c.growth = 3;
  c.num_classes = 4;
  c.in_channels = 2;
  c.image_size = 8;
  c.gated = gated;
  c.threshold = 0.375;
  c.p_clamp = 0.0625;
  return c;
}

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "mapgate_weights_" + name + ".bin";
}

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// The format as docs/weight-format.md describes it, written without the library's checks
// (so that the tests can produce inconsistent files). Assumes a little-endian host.
void u32(std::string& s, std::uint32_t v) { s.append(reinterpret_cast<const char*>(&v), 4); }
std::string serialise(const Weights& w, std::uint32_t version = 1) {
  std::string s("MAPGATE\0", 8);
  u32(s, version);
  const auto& c = w.config;
  const nlohmann::json header = {
      {"format", "mapgate-weights"},
      {"architecture",
       {{"depth", c.depth}, {"growth", c.growth}, {"bc", c.bc}, {"compression", c.effective_compression()},
        {"num_classes", c.num_classes}, {"in_channels", c.in_channels}, {"image_size", c.image_size}}},
      {"gates", {{"gated", c.gated}, {"threshold", c.threshold}, {"p_clamp", c.p_clamp}}},
      {"normalization", {{"mean", w.mean}, {"std", w.std}}},
      {"batch_norm_eps", w.bn_eps},
      {"tensor_count", w.tensors.size()}};
  const std::string text = header.dump();
  u32(s, text.size());
  s += text;
  // Network order, as the writer uses, then anything unexpected.
  std::vector<std::string> order;
  for (const auto& [name, shape] : expected_tensors(c))
    if (w.tensors.count(name)) order.push_back(name);
  for (const auto& [name, t] : w.tensors)
    if (std::find(order.begin(), order.end(), name) == order.end()) order.push_back(name);
  for (const auto& name : order) {
    const auto& t = w.tensors.at(name);
    u32(s, name.size());
    s += name;
    u32(s, t.shape.size());
    for (auto d : t.shape) u32(s, static_cast<std::uint32_t>(d));
    s.append(reinterpret_cast<const char*>(t.data.data()), 4 * t.data.size());
  }
  return s;
}


TEST(WeightFile, RoundTripKeepsEverything) {
  for (bool bc : {false, true})
    for (bool gated : {false, true}) {
      SCOPED_TRACE(std::string(bc ? "bc " : "") + (gated ? "gated" : "dense"));
      Weights w = random_weights(tiny(gated, bc), /*seed=*/7);
      w.mean = {0.25f, 0.5f};
      w.std = {0.125f, 2.f};
      const std::string path = temp_path("roundtrip");
      write_weights(path, w);
      const Weights r = read_weights(path);
      EXPECT_EQ(r.config.depth, w.config.depth);
      EXPECT_EQ(r.config.growth, w.config.growth);
      EXPECT_EQ(r.config.bc, w.config.bc);
      EXPECT_EQ(r.config.effective_compression(), w.config.effective_compression());
      EXPECT_EQ(r.config.num_classes, w.config.num_classes);
      EXPECT_EQ(r.config.in_channels, w.config.in_channels);
      EXPECT_EQ(r.config.image_size, w.config.image_size);
      EXPECT_EQ(r.config.gated, w.config.gated);
      EXPECT_EQ(r.config.threshold, w.config.threshold);
      EXPECT_EQ(r.config.p_clamp, w.config.p_clamp);
      EXPECT_EQ(r.mean, w.mean);
      EXPECT_EQ(r.std, w.std);
      EXPECT_EQ(r.bn_eps, w.bn_eps);
      ASSERT_EQ(r.tensors.size(), w.tensors.size());
      for (const auto& [name, t] : w.tensors) {
        ASSERT_TRUE(r.tensors.count(name)) << name;
        EXPECT_EQ(r.tensors.at(name).shape, t.shape) << name;
        EXPECT_EQ(r.tensors.at(name).data, t.data) << name;  // bit for bit
      }
      // The documented layout, written independently, is the same bytes.
      EXPECT_EQ(read_bytes(path), serialise(w));
      std::remove(path.c_str());
    }
}

TEST(WeightFile, NamesFollowTheLibTorchModel) {
  const auto names = expected_tensors(tiny(/*gated=*/true));
  auto has = [&](const std::string& n, std::vector<std::int64_t> shape) {
    for (const auto& [name, s] : names)
      if (name == n) return s == shape;
    return false;
  };
  // depth 7: one layer per block; stem 16 maps; growth 3.
  EXPECT_TRUE(has("stem.weight", {16, 2, 3, 3}));
  EXPECT_TRUE(has("block1.0.norm.running_var", {16}));
  EXPECT_TRUE(has("block1.0.conv.weight", {3, 16, 3, 3}));
  EXPECT_TRUE(has("trans1.conv.weight", {19, 19, 1, 1}));
  EXPECT_TRUE(has("block3.0.conv.weight", {3, 22, 3, 3}));
  EXPECT_TRUE(has("norm.weight", {25}));
  EXPECT_TRUE(has("classifier.weight", {4, 25}));
  EXPECT_TRUE(has("gates.2.fc.weight", {3, 22}));
  EXPECT_TRUE(has("gates.2.fc.bias", {3}));
  const auto bc = expected_tensors(tiny(/*gated=*/false, /*bc=*/true));
  bool found = false;
  for (const auto& [name, s] : bc) found |= name == "block2.0.conv1.weight" && s == std::vector<std::int64_t>{12, 4, 1, 1};
  EXPECT_TRUE(found) << "BC: stem 2k = 6 maps, block 1 ends with 9, trans1 keeps floor(0.5 * 9) = 4";
}

// `file` (a whole weight file) with its JSON header replaced by `edit`ed JSON; the tensors
// after the header are kept only if `keep_tensors`.
std::string with_header(const std::string& file, const std::function<void(nlohmann::json&)>& edit,
                        bool keep_tensors) {
  std::uint32_t size = 0;
  std::memcpy(&size, file.data() + 12, 4);  // little-endian host, as serialise()
  nlohmann::json header = nlohmann::json::parse(file.substr(16, size));
  edit(header);
  const std::string text = header.dump();
  std::string out = file.substr(0, 12);
  u32(out, text.size());
  return out + text + (keep_tensors ? file.substr(16 + size) : "");
}

class MalformedWeightFile : public ::testing::Test {
 protected:
  void SetUp() override {
    weights_ = random_weights(tiny(/*gated=*/true), /*seed=*/3);
    path_ = temp_path(::testing::UnitTest::GetInstance()->current_test_info()->name());
    good_ = serialise(weights_);
  }
  void TearDown() override { std::remove(path_.c_str()); }
  Weights weights_;
  std::string path_, good_;
};

TEST_F(MalformedWeightFile, MissingFile) {
  EXPECT_THROWS_WITH(read_weights(path_ + ".absent"), quoted(path_ + ".absent") + ": cannot open");
}

TEST_F(MalformedWeightFile, Truncated) {
  for (std::size_t size : {std::size_t{0}, std::size_t{5}, std::size_t{10}, std::size_t{30}, good_.size() / 2,
                           good_.size() - 1}) {
    SCOPED_TRACE(size);
    write_bytes(path_, good_.substr(0, size));
    EXPECT_THROWS_WITH(read_weights(path_), quoted(path_) + ": truncated");
  }
}

TEST_F(MalformedWeightFile, BadMagic) {
  std::string bytes = good_;
  bytes[0] = 'X';
  write_bytes(path_, bytes);
  EXPECT_THROWS_WITH(read_weights(path_), quoted(path_) + ": not a mapgate weight file (magic \"XAPGATE\\x00\"");
}

TEST_F(MalformedWeightFile, OtherVersion) {
  write_bytes(path_, serialise(weights_, /*version=*/3));
  EXPECT_THROWS_WITH(read_weights(path_), quoted(path_) + ": this file is version 3, this build reads version 1");
}

TEST_F(MalformedWeightFile, MissingTensor) {
  weights_.tensors.erase("block2.0.conv.weight");
  write_bytes(path_, serialise(weights_));
  EXPECT_THROWS_WITH(read_weights(path_), quoted(path_) + ": tensor \"block2.0.conv.weight\" is missing");
}

TEST_F(MalformedWeightFile, WrongShape) {
  auto& t = weights_.tensors.at("block3.0.conv.weight");
  t.shape = {3, 21, 3, 3};
  t.data.resize(3 * 21 * 9);
  write_bytes(path_, serialise(weights_));
  EXPECT_THROWS_WITH(read_weights(path_),
                     quoted(path_) + ": tensor \"block3.0.conv.weight\" has shape [3,21,3,3], this architecture expects "
                                     "[3,22,3,3]");
}

TEST_F(MalformedWeightFile, UnexpectedTensor) {
  weights_.tensors["gates.9.fc.bias"] = WeightTensor{{3}, {0, 0, 0}};
  write_bytes(path_, serialise(weights_));
  EXPECT_THROWS_WITH(read_weights(path_), quoted(path_) + ": unexpected tensor \"gates.9.fc.bias\"");
}

TEST_F(MalformedWeightFile, TrailingBytes) {
  write_bytes(path_, good_ + "junk");
  EXPECT_THROWS_WITH(read_weights(path_), quoted(path_) + ": 4 unexpected bytes after the last tensor");
}

TEST_F(MalformedWeightFile, BadHeader) {
  std::string bytes = good_;
  const auto at = bytes.find("\"depth\":7");
  ASSERT_NE(at, std::string::npos);
  bytes.replace(at, 9, "\"depth\":8");  // same length: 8 is not 3n + 4
  write_bytes(path_, bytes);
  EXPECT_THROWS_WITH(read_weights(path_), quoted(path_) + ": invalid architecture: depth 8");
}

// A zero, negative or non-finite std (or a non-finite mean) would turn every input into
// inf or NaN and every prediction into noise, silently.
TEST_F(MalformedWeightFile, NormalizationMustBeFiniteWithPositiveStd) {
  struct Case {
    nlohmann::json mean, std;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{0.5, 0.5}, {0.25, 0.0}, "normalization of channel 1: mean 0.500000, std 0.000000"},
      {{0.5, 0.5}, {-1.0, 0.25}, "normalization of channel 0: mean 0.500000, std -1.000000"},
      {{0.5, 1e39}, {0.25, 0.25}, "normalization of channel 1: mean inf"},  // overflows a float
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.message);
    const std::string bytes = with_header(good_, [&](nlohmann::json& h) {
      h["normalization"]["mean"] = c.mean;
      h["normalization"]["std"] = c.std;
    }, /*keep_tensors=*/true);
    EXPECT_THROWS_WITH(parse_weights(bytes, "norm.mgw"), "weights \"norm.mgw\": " + c.message);
  }
  EXPECT_NO_THROW(parse_weights(good_, "good.mgw"));
}

// Found with fuzz/fuzz_weights.cpp (docs/reliability.md): a header alone, with an enormous depth and no
// tensors, made the reader list the architecture's ~10^10 tensors before noticing that
// none were there. Such a depth cannot fit in the file, and says so at once.
TEST_F(MalformedWeightFile, DepthTheFileCannotHold) {
  auto deep = [](nlohmann::json& h) {
    h["architecture"]["depth"] = 2147483647;  // 3n + 4 with n = 715827881
    h["tensor_count"] = 0;
  };
  const std::string bytes = with_header(good_, deep, /*keep_tensors=*/false);
  EXPECT_THROWS_WITH(parse_weights(bytes, "deep.mgw"),
                     "weights \"deep.mgw\": invalid architecture: depth 2147483647 growth 3: 2.1e+20 parameters, more than the 1e+09 this build allows");
  // The same header with depth 7 still names the first missing tensor.
  const std::string shallow =
      with_header(good_, [](nlohmann::json& h) { h["tensor_count"] = 0; }, /*keep_tensors=*/false);
  EXPECT_THROWS_WITH(parse_weights(shallow, "shallow.mgw"), "tensor \"stem.weight\" is missing");
}

// Found with fuzz/fuzz_weights.cpp: nlohmann converts a JSON float to int with a plain cast, undefined
// behaviour (UBSan) for 1e300. Integer fields take integers that fit, nothing else.
TEST_F(MalformedWeightFile, IntegerFieldsTakeOnlyIntegersThatFit) {
  struct Case {
    const char* group;  // "" for a top-level key
    const char* key;
    nlohmann::json value;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"architecture", "depth", 1e300, "header \"architecture.depth\" is 1e+300, expected an integer"},
      {"architecture", "depth", 7.5, "header \"architecture.depth\" is 7.5, expected an integer"},
      {"architecture", "growth", true, "header \"architecture.growth\" is true, expected an integer"},
      {"architecture", "num_classes", 4294967300ull, "header \"architecture.num_classes\" is 4294967300, out of range"},
      {"architecture", "in_channels", -2147483649ll, "header \"architecture.in_channels\" is -2147483649, out of range"},
      {"", "tensor_count", -1, "header \"tensor_count\" is -1, out of range"},
      {"", "tensor_count", 1e300, "header \"tensor_count\" is 1e+300, expected an integer"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.key) + " = " + c.value.dump());
    const std::string bytes = with_header(
        good_,
        [&](nlohmann::json& h) {
          if (*c.group) h[c.group][c.key] = c.value;
          else h[c.key] = c.value;
        },
        /*keep_tensors=*/true);
    EXPECT_THROWS_WITH(parse_weights(bytes, "ints.mgw"), "weights \"ints.mgw\": " + c.message);
  }
  // In range, the same fields still read back.
  EXPECT_EQ(parse_weights(good_, "good.mgw").config.depth, 7);
}

// A write that cannot complete (here the rename: a directory is in the way) names the
// file and leaves no temporary behind.
TEST(WeightFile, FailedWriteLeavesNoTemporary) {
  const std::string path = temp_path("dir_in_the_way");
  std::filesystem::remove_all(path);
  std::filesystem::create_directories(path + "/keep");
  EXPECT_THROWS_WITH(write_weights(path, random_weights(tiny(false), 1)), "rename failed");
  for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::path(path).parent_path()))
    EXPECT_EQ(entry.path().string().rfind(path + ".tmp", 0), std::string::npos) << entry.path();
  EXPECT_TRUE(std::filesystem::exists(path + "/keep"));
  std::filesystem::remove_all(path);
}

TEST_F(MalformedWeightFile, WriterRefusesInconsistentWeights) {
  weights_.tensors.erase("stem.weight");
  EXPECT_THROWS_WITH(write_weights(path_, weights_), "tensor \"stem.weight\" is missing");
  weights_ = random_weights(tiny(true), 3);
  weights_.mean = {0.5f};
  EXPECT_THROWS_WITH(write_weights(path_, weights_), "normalization has 1 means");
}

}  // namespace
}  // namespace mapgate

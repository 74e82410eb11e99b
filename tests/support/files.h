// Files the tests make: bytes written to a path, a scratch directory per test, and the
// temporaries an atomic write must never leave behind. Header-only, no LibTorch: the data,
// engine and LibTorch suites share it.
#pragma once

#include <unistd.h>

#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace mapgate::test {

// Writes `size` bytes to `path` (its directory created), replacing what was there.
inline void write_bytes(const std::string& path, const void* data, std::size_t size) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  ASSERT_TRUE(out.good()) << path;
}
inline void write_bytes(const std::string& path, const std::string& bytes) {
  write_bytes(path, bytes.data(), bytes.size());
}
// A template, so that a braced list ({} or {'a', 'b'}) picks the std::string overload.
template <typename Byte>
void write_bytes(const std::string& path, const std::vector<Byte>& bytes) {
  static_assert(sizeof(Byte) == 1, "bytes");
  write_bytes(path, bytes.data(), bytes.size());
}

// A fresh directory <TempDir>/mapgate_<test name>_<pid>_<n>, removed on destruction.
class ScratchDir {
 public:
  ScratchDir() {
    static int counter = 0;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string tag = info ? std::string(info->test_suite_name()) + "_" + info->name() : "scratch";
    for (char& ch : tag)
      if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
    path_ = (std::filesystem::path(::testing::TempDir()) /
             ("mapgate_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++)))
                .string();
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const {
    return (std::filesystem::path(path_) / name).string();
  }

 private:
  std::string path_;
};

// Files in `dir` that an unfinished write_file_atomic leaves (NAME.tmp.PID): none may
// remain once a write has returned or thrown.
inline std::vector<std::string> temporaries_in(const std::string& dir) {
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.path().filename().string().find(".tmp.") != std::string::npos) found.push_back(entry.path().string());
  return found;
}

}  // namespace mapgate::test

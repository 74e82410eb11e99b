// DirLock: one holder per directory, released with the object (and, by the kernel, with
// the process); same_file by device and inode.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "../../support/errors.h"
#include "common/dir_lock.h"
#include "common/error.h"

namespace mapgate {
namespace {

namespace fs = std::filesystem;

std::string fresh_dir(const char* name) {
  const fs::path dir = fs::temp_directory_path() / (std::string(name) + "." + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

// What taking the lock on `dir` throws: "(no exception)" when it is free.
std::string error_of(const std::string& dir) {
  return test::message_of([&] { DirLock second(dir, "--out"); });
}

TEST(DirLock, SecondHolderIsRefusedWithTheFirstOnesPidUntilItIsReleased) {
  const std::string dir = fresh_dir("mapgate-dirlock");
  {
    std::optional<DirLock> first;
    first.emplace(dir, "--out");
    const std::string message = error_of(dir);
    EXPECT_EQ(message, "--out \"" + dir + "\": in use by another mapgate process (pid " +
                           std::to_string(::getpid()) + "); wait for it to end or choose another directory");
    DirLock moved(std::move(*first));
    first.reset();  // the moved-from lock releases nothing
    EXPECT_NE(error_of(dir), "(no exception)");
  }
  EXPECT_EQ(error_of(dir), "(no exception)") << "released with its holder";
  fs::remove_all(dir);
}

TEST(DirLock, MissingDirectoryNamesItsFlag) {
  const std::string dir = fresh_dir("mapgate-dirlock-missing") + "/none";
  EXPECT_NE(error_of(dir).find("--out \"" + dir + "\": cannot create its lock file (No such file or directory)"),
            std::string::npos);
  fs::remove_all(fs::path(dir).parent_path());
}

TEST(SameFile, FollowsSymlinksAndNeedsBothFiles) {
  const std::string dir = fresh_dir("mapgate-samefile");
  const std::string a = dir + "/a", b = dir + "/b", link = dir + "/link";
  for (const auto& f : {a, b}) std::ofstream(f) << "x";
  fs::create_symlink(a, link);
  EXPECT_TRUE(same_file(a, a));
  EXPECT_TRUE(same_file(a, link));
  EXPECT_FALSE(same_file(a, b));
  EXPECT_FALSE(same_file(a, dir + "/none"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mapgate

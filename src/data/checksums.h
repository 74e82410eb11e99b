// Hex digests (OpenSSL libcrypto) and the official CIFAR-10 checksums
// (decompressed .bin files of cifar-10-binary.tar.gz, see ../shared/data README).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mapgate {

std::string sha256_hex(const std::uint8_t* data, std::size_t size);
std::string md5_hex(const std::uint8_t* data, std::size_t size);
std::string sha1_hex(const std::uint8_t* data, std::size_t size);

// The same digests of a whole file, read in 1 MiB pieces (the fetched tarballs are
// 130-170 MB). Throws Error "checksum "path": ..." if it is not a regular file or
// cannot be read.
std::string file_md5_hex(const std::string& path);
std::string file_sha1_hex(const std::string& path);

struct OfficialFile {
  const char* name;    // "data_batch_1.bin"
  const char* sha256;
  const char* md5;
};
// The six CIFAR-10 binary files, training batches first, test_batch last.
const std::vector<OfficialFile>& cifar10_official_files();

struct FileCheck {
  std::string name;          // "data_batch_1.bin"
  std::string path;          // the file read (plain or .gz)
  std::string sha256;        // of the decompressed bytes
  bool matches = false;
};

struct VerifyReport {
  std::string dataset;
  std::size_t train = 0, test = 0;
  int classes = 0;
  std::vector<std::size_t> train_per_class, test_per_class;
  std::vector<std::string> class_names;
  std::vector<FileCheck> files;             // empty when the dataset has no official sums
  std::optional<bool> checksums_match;      // nullopt: no official checksums known
};

// Loads the dataset (all reader checks apply), counts per split and class, and for
// cifar10 compares each decompressed file's SHA-256 with the official value.
VerifyReport verify_dataset(const std::string& name, const std::string& dir);

}  // namespace mapgate

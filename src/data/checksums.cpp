// SHA-256 / MD5 / SHA-1 through OpenSSL EVP (of a buffer, or of a file streamed), the
// official CIFAR-10 checksums, and `data verify`. The table must match
// ../shared/data/cifar-10-batches-bin/README.md (values from torchvision-ruby and
// pytorch-cpp for the decompressed official .bin files).
#include "data/checksums.h"

#include <openssl/evp.h>

#include <cstdio>
#include <memory>

#include "common/error.h"
#include "common/regular_file.h"
#include "data/cifar.h"
#include "data/dataset.h"

namespace mapgate {
namespace {

std::string to_hex(const unsigned char* digest, unsigned int len) {
  static const char kHex[] = "0123456789abcdef";
  std::string hex(2 * len, '0');
  for (unsigned int i = 0; i < len; ++i) {
    hex[2 * i] = kHex[digest[i] >> 4];
    hex[2 * i + 1] = kHex[digest[i] & 15];
  }
  return hex;
}

std::string digest_hex(const EVP_MD* md, const char* label, const std::uint8_t* data,
                       std::size_t size) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data, size, out, &len, md, nullptr) != 1) {
    throw Error(std::string(label) + ": OpenSSL EVP_Digest failed");
  }
  return to_hex(out, len);
}

// Streams the file through the digest in 1 MiB pieces, so it is never held whole.
std::string file_digest_hex(const EVP_MD* md, const std::string& path) {
  const std::string who = "checksum " + quoted(path) + ": ";
  require_regular_file(path, "checksum");
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!f) throw Error(who + "cannot open");
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1)
    throw Error(who + "OpenSSL digest initialisation failed");
  std::vector<unsigned char> buf(1 << 20);
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f.get())) > 0)
    if (EVP_DigestUpdate(ctx.get(), buf.data(), n) != 1) throw Error(who + "OpenSSL digest failed");
  if (std::ferror(f.get())) throw Error(who + "read error");
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), out, &len) != 1) throw Error(who + "OpenSSL digest failed");
  return to_hex(out, len);
}

std::vector<std::size_t> per_class(const Dataset& d) {
  std::vector<std::size_t> counts(static_cast<std::size_t>(d.num_classes), 0);
  for (std::uint8_t label : d.labels) ++counts.at(label);
  return counts;
}

}  // namespace

std::string sha256_hex(const std::uint8_t* data, std::size_t size) {
  return digest_hex(EVP_sha256(), "sha256", data, size);
}
std::string md5_hex(const std::uint8_t* data, std::size_t size) {
  return digest_hex(EVP_md5(), "md5", data, size);
}
std::string sha1_hex(const std::uint8_t* data, std::size_t size) {
  return digest_hex(EVP_sha1(), "sha1", data, size);
}
std::string file_md5_hex(const std::string& path) { return file_digest_hex(EVP_md5(), path); }
std::string file_sha1_hex(const std::string& path) { return file_digest_hex(EVP_sha1(), path); }

const std::vector<OfficialFile>& cifar10_official_files() {
  static const std::vector<OfficialFile> files = {
      {"data_batch_1.bin", "cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5",
       "5dd7e06a14cb22eb9f671a540d1b7c25"},
      {"data_batch_2.bin", "a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed",
       "5ea93a67294ea407fff1d09f752e9692"},
      {"data_batch_3.bin", "bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67",
       "942cd6a4bcdd0dd3c604fbe906cb4421"},
      {"data_batch_4.bin", "014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48",
       "ae636b3ba5c66a11e91e8cb52e771fcb"},
      {"data_batch_5.bin", "755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add",
       "53f37980c15c3d472c316c40844f3f0d"},
      {"test_batch.bin", "8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b",
       "803d5f7f4d78ea53de84dbe85f74fb6d"},
  };
  return files;
}

VerifyReport verify_dataset(const std::string& name, const std::string& dir) {
  VerifyReport r;
  r.dataset = name;
  DatasetSplits s;
  if (name == "cifar10") {
    // Checksum each file's decompressed bytes while the reader has them, so the
    // ~184 MB are inflated once.
    s = load_cifar10(dir, [&](const std::string& file, const std::string& path,
                              const std::vector<std::uint8_t>& bytes) {
      FileCheck c;
      c.name = file;
      c.path = path;
      c.sha256 = sha256_hex(bytes.data(), bytes.size());
      for (const OfficialFile& o : cifar10_official_files()) {
        if (file == o.name) c.matches = c.sha256 == o.sha256;
      }
      r.files.push_back(c);
    });
    bool all = r.files.size() == cifar10_official_files().size();
    for (const FileCheck& c : r.files) all = all && c.matches;
    r.checksums_match = all;
  } else {
    s = load_dataset(name, dir);
  }
  r.train = s.train.size();
  r.test = s.test.size();
  r.classes = s.train.num_classes;
  r.class_names = s.train.class_names;
  r.train_per_class = per_class(s.train);
  r.test_per_class = per_class(s.test);
  return r;
}

}  // namespace mapgate

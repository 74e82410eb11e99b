// Writes the seed corpus of every fuzz target: fuzz_make_corpus fuzz/corpus
// (one folder per target; docs/reliability.md). Valid and near-valid inputs, a few KB
// each, made here from the formats' rules so they can be regenerated bit for bit.
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/weights.h"
#include "../tests/support/tar_writer.h"

namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

void write(const fs::path& path, const Bytes& b) {
  fs::create_directories(path.parent_path());
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  if (!f) throw std::runtime_error("cannot write " + path.string());
}

// One gzip member (zlib, mtime 0, so the output is the same on every run).
Bytes gzip(const Bytes& in, int level = Z_BEST_COMPRESSION) {
  z_stream zs{};
  if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("deflateInit2 failed");
  Bytes out(deflateBound(&zs, in.size()) + 32);
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END) throw std::runtime_error("deflate failed");
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

Bytes cat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

Bytes head(Bytes a, std::size_t n) {
  a.resize(n);
  return a;
}

// CIFAR record i: label bytes, then pixel c = (i*7 + c) % 256 (STYLE.md's fixture).
Bytes cifar_record(int i, const Bytes& labels) {
  Bytes r = labels;
  for (int c = 0; c < 3072; ++c) r.push_back(static_cast<std::uint8_t>((i * 7 + c) % 256));
  return r;
}

void put_be32(Bytes& b, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(v >> s));
}

Bytes idx_images(std::uint32_t n, std::uint32_t rows, std::uint32_t cols, std::size_t pixels) {
  Bytes b;
  put_be32(b, 0x00000803);
  put_be32(b, n);
  put_be32(b, rows);
  put_be32(b, cols);
  for (std::size_t p = 0; p < pixels; ++p) b.push_back(static_cast<std::uint8_t>(p * 13 % 256));
  return b;
}

Bytes idx_labels(std::uint32_t n, std::size_t count) {
  Bytes b;
  put_be32(b, 0x00000801);
  put_be32(b, n);
  for (std::size_t i = 0; i < count; ++i) b.push_back(static_cast<std::uint8_t>(i % 10));
  return b;
}

// The same weight file with its JSON header indented (whitespace after every value, so
// that same-length overwrites can lengthen a number) and `tensor_count` tensors kept.
Bytes reindented(const Bytes& file, std::size_t tensor_count) {
  auto le32 = [&](std::size_t at) {
    return std::uint32_t{file[at]} | std::uint32_t{file[at + 1]} << 8 | std::uint32_t{file[at + 2]} << 16 |
           std::uint32_t{file[at + 3]} << 24;
  };
  const std::size_t header_size = le32(12);
  nlohmann::json header = nlohmann::json::parse(file.begin() + 16, file.begin() + 16 + header_size);
  header["tensor_count"] = tensor_count;
  const std::string text = header.dump(/*indent=*/2) + "        ";
  Bytes out(file.begin(), file.begin() + 12);
  for (int s = 0; s < 32; s += 8) out.push_back(static_cast<std::uint8_t>(text.size() >> s));
  out.insert(out.end(), text.begin(), text.end());
  if (tensor_count > 0) out.insert(out.end(), file.begin() + 16 + header_size, file.end());
  return out;
}

Bytes bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

// A pax extended-header record "LEN path=VALUE\n", LEN counting the whole record.
std::string pax_record(const std::string& key, const std::string& value) {
  const std::string body = " " + key + "=" + value + "\n";
  std::size_t len = body.size() + 1;
  while (std::to_string(len).size() + body.size() != len) ++len;
  return std::to_string(len) + body;
}

// A tiny network: a few hundred floats, so its weight file is a few KB.
mapgate::DenseNetConfig tiny(bool gated, bool bc) {
  mapgate::DenseNetConfig c;
  c.depth = bc ? 10 : 7;
  c.bc = bc;
  c.growth = 1;
  c.compression = bc ? 0.5 : 0.25;
  c.num_classes = 2;
  c.in_channels = 1;
  c.image_size = 4;
  c.gated = gated;
  return c;
}

// The weight file of tiny(gated, bc), as `mapgate export` writes it.
Bytes weight_file(bool gated, bool bc, const fs::path& scratch) {
  mapgate::write_weights(scratch.string(), mapgate::random_weights(tiny(gated, bc), /*seed=*/7));
  std::ifstream f(scratch, std::ios::binary);
  Bytes b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  fs::remove(scratch);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_corpus DIR   (writes DIR/<target>/*; DIR is usually fuzz/corpus)\n");
    return 2;
  }
  const fs::path dir = argv[1];
  try {
    // CIFAR-10 (and CIFAR-100, which fuzz_cifar10 also parses).
    const Bytes r0 = cifar_record(0, {3}), r1 = cifar_record(1, {9});
    write(dir / "fuzz_cifar10" / "one_record.bin", r0);
    write(dir / "fuzz_cifar10" / "one_record.bin.gz", gzip(r0));
    write(dir / "fuzz_cifar10" / "two_records_two_members.bin.gz", cat(gzip(r0), gzip(r1)));
    write(dir / "fuzz_cifar10" / "bad_label.bin", cifar_record(0, {10}));
    write(dir / "fuzz_cifar10" / "truncated_record.bin", head(r0, 3000));
    write(dir / "fuzz_cifar10" / "cifar100_record.bin", cifar_record(2, {5, 42}));

    // IDX: images (magic 0x803, N x 28 x 28) and labels (magic 0x801).
    write(dir / "fuzz_idx" / "images_n1.idx", idx_images(1, 28, 28, 784));
    write(dir / "fuzz_idx" / "images_n2.idx.gz", gzip(idx_images(2, 28, 28, 2 * 784)));
    write(dir / "fuzz_idx" / "images_27x28.idx", idx_images(1, 27, 28, 27 * 28));
    write(dir / "fuzz_idx" / "labels_n5.idx", idx_labels(5, 5));
    write(dir / "fuzz_idx" / "labels_n5.idx.gz", gzip(idx_labels(5, 5)));
    write(dir / "fuzz_idx" / "labels_says_6_has_5.idx", idx_labels(6, 5));

    // gzip: one and two members, stored blocks, truncated, trailing bytes, not gzip.
    Bytes text;
    for (int i = 0; i < 40; ++i)
      for (char ch : std::string("mapgate ") + std::to_string(i) + "\n") text.push_back(static_cast<std::uint8_t>(ch));
    const Bytes gz = gzip(text);
    write(dir / "fuzz_gzip" / "text.gz", gz);
    write(dir / "fuzz_gzip" / "two_members.gz", cat(gz, gzip({'e', 'n', 'd', '\n'})));
    write(dir / "fuzz_gzip" / "stored.gz", gzip(head(text, 100), /*level=*/0));
    write(dir / "fuzz_gzip" / "empty_member.gz", gzip({}));
    write(dir / "fuzz_gzip" / "truncated.gz", head(gz, gz.size() - 5));
    write(dir / "fuzz_gzip" / "trailing_bytes.gz", cat(gz, {'x', 'y', 'z'}));
    write(dir / "fuzz_gzip" / "plain.txt", head(text, 64));

    // tar (the fetch extractor): gzip and plain; a directory, a GNU long name, a pax
    // path (one with a NUL, refused), links and a FIFO (skipped), ".." (refused),
    // truncated, no end blocks.
    using mapgate::test::TarMember;
    using mapgate::test::tar_bytes;
    const std::string meta = "airplane\nautomobile\n";
    const std::string one = tar_bytes({{"cifar-10-batches-bin/batches.meta.txt", meta}});
    write(dir / "fuzz_tar" / "one_file.tar.gz", gzip(bytes(one)));
    write(dir / "fuzz_tar" / "directory_and_files.tar",
          bytes(tar_bytes({{"data/", "", '5'}, {"data/a.bin", "abc"}, {"./data//b.bin", std::string(700, 'b')}})));
    write(dir / "fuzz_tar" / "long_name.tar.gz", gzip(bytes(tar_bytes({{std::string(120, 'n') + ".bin", "long"}}))));
    const std::string pax = pax_record("path", "dir/pax_name.bin");
    write(dir / "fuzz_tar" / "pax_path.tar",
          bytes(tar_bytes({{"PaxHeaders/x", pax, 'x'}, {"short_name.bin", "pax"}})));
    const std::string pax_nul = pax_record("path", std::string("dir/pax\0name.bin", 16));  // refused
    write(dir / "fuzz_tar" / "pax_path_with_nul.tar",
          bytes(tar_bytes({{"PaxHeaders/x", pax_nul, 'x'}, {"short_name.bin", "pax"}})));
    write(dir / "fuzz_tar" / "links_and_fifo.tar",
          bytes(tar_bytes({{"link", "", '2'}, {"hard", "", '1'}, {"fifo", "", '6'}, {"file.bin", "f"}})));
    write(dir / "fuzz_tar" / "dotdot.tar", bytes(tar_bytes({{"../escape.bin", "x"}})));
    const Bytes one_gz = gzip(bytes(one));
    write(dir / "fuzz_tar" / "truncated.tar.gz", head(one_gz, one_gz.size() - 8));
    write(dir / "fuzz_tar" / "no_end_blocks.tar", bytes(tar_bytes({{"a.bin", "a"}}, /*end_blocks=*/false)));

    // Weight files: dense, gated, BC; truncated; another version.
    const fs::path scratch = dir / "weights.tmp";
    const Bytes plain = weight_file(/*gated=*/false, /*bc=*/false, scratch);
    const std::size_t plain_count = mapgate::expected_tensors(tiny(/*gated=*/false, /*bc=*/false)).size();
    write(dir / "fuzz_weights" / "dense.mgw", plain);
    write(dir / "fuzz_weights" / "gated.mgw", weight_file(/*gated=*/true, /*bc=*/false, scratch));
    write(dir / "fuzz_weights" / "bc_gated.mgw", weight_file(/*gated=*/true, /*bc=*/true, scratch));
    write(dir / "fuzz_weights" / "truncated.mgw", head(plain, plain.size() - 6));
    Bytes v2 = plain;
    v2[8] = 2;  // the uint32 version at offset 8, little-endian
    write(dir / "fuzz_weights" / "version2.mgw", v2);
    write(dir / "fuzz_weights" / "dense_indented.mgw", reindented(plain, plain_count));
    write(dir / "fuzz_weights" / "header_only.mgw", reindented(plain, 0));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_make_corpus: %s\n", e.what());
    return 1;
  }
  return 0;
}

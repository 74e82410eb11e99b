// Reads a tar stream through zlib's gzread, 512-byte headers (POSIX ustar, GNU), and
// writes regular members under the output directory; anything that could escape it is
// rejected before a byte is written.
#include "data/tar_gz.h"

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "common/error.h"
#include "common/regular_file.h"

namespace mapgate {
namespace {

constexpr std::size_t kBlock = 512;

class GzReader {
 public:
  GzReader(const std::string& path, std::uint64_t max_bytes) : path_(path), max_bytes_(max_bytes) {
    require_regular_file(path, "tar.gz");  // gzopen would wait on a FIFO
    gz_ = gzopen(path.c_str(), "rb");
    if (!gz_) throw Error("tar.gz " + mapgate::quoted(path) + ": cannot open");
    gzbuffer(gz_, 1 << 17);
  }
  ~GzReader() {
    if (gz_) gzclose_r(gz_);
  }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  // Reads up to n bytes; fewer only at the end of the data. Corruption throws.
  std::size_t read(void* buf, std::size_t n) {
    std::size_t got = 0;
    auto* out = static_cast<unsigned char*>(buf);
    while (got < n) {
      unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(n - got, 1u << 30));
      int r = gzread(gz_, out + got, chunk);
      if (r < 0) fail_corrupt();
      if (r == 0) break;
      got += static_cast<std::size_t>(r);
    }
    check_truncated();
    total_ += got;
    if (total_ > max_bytes_)
      throw Error("tar.gz " + mapgate::quoted(path_) + ": decompresses to more than the " +
                  std::to_string(max_bytes_) + " bytes an archive may hold here; stopped there (a tar bomb?)");
    return got;
  }

  // Reads and discards everything left, so the gzip CRC and length get checked.
  void drain() {
    unsigned char buf[1 << 14];
    while (read(buf, sizeof buf) == sizeof buf) {
    }
  }

  // zlib reports a gzip stream cut short as Z_BUF_ERROR while still returning the data
  // it decoded; that must be an error here, never a shorter archive.
  void check_truncated() {
    int err = Z_OK;
    const char* msg = gzerror(gz_, &err);
    if (err == Z_BUF_ERROR)
      throw Error("tar.gz " + mapgate::quoted(path_) +
                  ": truncated (gzip stream ends early: " + std::string(msg ? msg : "") + ")");
    if (err != Z_OK) fail_corrupt();
  }

 private:
  [[noreturn]] void fail_corrupt() {
    int err = Z_OK;
    const char* msg = gzerror(gz_, &err);
    throw Error("tar.gz " + mapgate::quoted(path_) + ": corrupt gzip data (" +
                std::string(msg ? msg : "unknown zlib error") + ")");
  }

  std::string path_;
  std::uint64_t max_bytes_;
  std::uint64_t total_ = 0;  // bytes decompressed so far
  gzFile gz_ = nullptr;
};

// Field text up to its first NUL (tar fields need not be NUL-terminated).
std::string field(const unsigned char* p, std::size_t n) {
  std::size_t len = 0;
  while (len < n && p[len] != 0) ++len;
  return std::string(reinterpret_cast<const char*>(p), len);
}

// Numeric field: octal digits padded with spaces/NULs, or GNU base-256 (high bit set).
bool parse_number(const unsigned char* p, std::size_t n, std::uint64_t* value) {
  std::uint64_t v = 0;
  if (p[0] & 0x80) {
    if (p[0] & 0x40) return false;  // negative
    v = p[0] & 0x3f;
    for (std::size_t i = 1; i < n; ++i) {
      if (v >> 55) return false;
      v = (v << 8) | p[i];
    }
    *value = v;
    return true;
  }
  std::size_t i = 0;
  while (i < n && (p[i] == ' ' || p[i] == 0)) ++i;
  bool any = false;
  for (; i < n && p[i] >= '0' && p[i] <= '7'; ++i) {
    if (v >> 60) return false;
    v = v * 8 + static_cast<unsigned>(p[i] - '0');
    any = true;
  }
  for (; i < n; ++i)
    if (p[i] != ' ' && p[i] != 0) return false;
  *value = any ? v : 0;
  return true;
}

bool checksum_ok(const unsigned char* h) {
  std::uint64_t stored = 0;
  if (!parse_number(h + 148, 8, &stored)) return false;
  std::uint64_t unsigned_sum = 0;
  std::int64_t signed_sum = 0;  // some old tars summed signed chars
  for (std::size_t i = 0; i < kBlock; ++i) {
    unsigned char c = (i >= 148 && i < 156) ? ' ' : h[i];
    unsigned_sum += c;
    signed_sum += static_cast<signed char>(c);
  }
  return stored == unsigned_sum || static_cast<std::int64_t>(stored) == signed_sum;
}

bool all_zero(const unsigned char* h) {
  for (std::size_t i = 0; i < kBlock; ++i)
    if (h[i]) return false;
  return true;
}

// "./a//b/" -> "a/b"; throws for absolute paths, ".." components and NUL bytes.
std::string safe_relative(const std::string& archive, const std::string& name) {
  // Possible only through a GNU long name or a pax path; the file system would see the
  // name cut at the NUL, not the name that was checked.
  if (const auto nul = name.find('\0'); nul != std::string::npos)
    throw Error("tar.gz " + mapgate::quoted(archive) + ": member " + mapgate::quoted(name.substr(0, nul)) +
                "... has a NUL byte in its name");
  if (!name.empty() && name[0] == '/')
    throw Error("tar.gz " + mapgate::quoted(archive) + ": member " + mapgate::quoted(name) +
                " has an absolute path; only relative paths inside the output are allowed");
  std::string out;
  std::size_t i = 0;
  while (i <= name.size()) {
    std::size_t j = name.find('/', i);
    if (j == std::string::npos) j = name.size();
    std::string part = name.substr(i, j - i);
    if (part == "..")
      throw Error("tar.gz " + mapgate::quoted(archive) + ": member " + mapgate::quoted(name) +
                  " contains \"..\"; only paths inside the output are allowed");
    if (!part.empty() && part != ".") out += (out.empty() ? "" : "/") + part;
    i = j + 1;
  }
  return out;
}

// pax extended header: records "LEN key=value\n"; returns the "path" value if present.
std::string pax_path(const std::string& data) {
  std::size_t pos = 0;
  std::string path;
  while (pos < data.size()) {
    std::size_t space = data.find(' ', pos);
    if (space == std::string::npos) break;
    std::size_t len = std::strtoul(data.c_str() + pos, nullptr, 10);
    // Not `pos + len > size`: strtoul takes "-6" as 2^64 - 6, which wrapped pos back to
    // the start and looped forever.
    if (len == 0 || len > data.size() - pos || space >= pos + len) break;
    std::string rec = data.substr(space + 1, pos + len - space - 1);  // key=value\n
    if (!rec.empty() && rec.back() == '\n') rec.pop_back();
    if (rec.rfind("path=", 0) == 0) path = rec.substr(5);
    pos += len;
  }
  return path;
}

std::uint64_t padded(std::uint64_t size) { return (size + kBlock - 1) / kBlock * kBlock; }

}  // namespace

std::vector<std::string> extract_tar_gz(const std::string& archive, const std::string& out_dir,
                                        const std::function<bool(const std::string&)>& want,
                                        std::uint64_t max_bytes) {
  namespace fs = std::filesystem;
  GzReader in(archive, max_bytes);
  std::vector<std::string> written;
  std::vector<unsigned char> buf(1 << 16);
  unsigned char h[kBlock];
  std::string long_name;  // from a GNU 'L' or pax 'x' header, for the next member
  std::uint64_t offset = 0;

  auto truncated = [&](const std::string& what) {
    return Error("tar.gz " + mapgate::quoted(archive) + ": truncated: " + what);
  };
  // Reads a member's data (padded to whole blocks) into `sink`, or skips it if null.
  auto read_data = [&](const std::string& name, std::uint64_t size, std::FILE* sink,
                       std::string* text) {
    std::uint64_t left = padded(size), keep = size;
    while (left > 0) {
      std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, buf.size()));
      std::size_t got = in.read(buf.data(), n);
      if (got != n)
        throw truncated("member " + mapgate::quoted(name) + " needs " + std::to_string(size) +
                        " bytes, the archive ends after " +
                        std::to_string(size - keep + std::min<std::uint64_t>(got, keep)));
      std::size_t use = static_cast<std::size_t>(std::min<std::uint64_t>(keep, n));
      if (sink && use && std::fwrite(buf.data(), 1, use, sink) != use)
        throw Error("tar.gz " + mapgate::quoted(archive) + ": writing member " +
                    mapgate::quoted(name) + " failed (disk full?)");
      if (text) text->append(reinterpret_cast<const char*>(buf.data()), use);
      keep -= use;
      left -= n;
    }
    offset += kBlock + padded(size);
  };

  for (;;) {
    std::size_t got = in.read(h, kBlock);
    if (got == 0) throw truncated("no end-of-archive block after offset " + std::to_string(offset));
    if (got != kBlock) throw truncated("partial header at offset " + std::to_string(offset));
    if (all_zero(h)) break;  // end of archive (a second zero block may follow)
    if (!checksum_ok(h))
      throw Error("tar.gz " + mapgate::quoted(archive) + ": bad header checksum at offset " +
                  std::to_string(offset) + " (not a tar archive, or corrupt)");
    std::uint64_t size = 0;
    if (!parse_number(h + 124, 12, &size))
      throw Error("tar.gz " + mapgate::quoted(archive) + ": bad size field at offset " +
                  std::to_string(offset));
    char type = static_cast<char>(h[156]);
    std::string name = field(h, 100);
    if (std::memcmp(h + 257, "ustar\0", 6) == 0) {  // POSIX: prefix field at 345
      std::string prefix = field(h + 345, 155);
      if (!prefix.empty()) name = prefix + "/" + name;
    }

    if (type == 'L' || type == 'x') {  // long name for the next member
      std::string data;
      read_data(name, size, nullptr, &data);
      std::string next =
          type == 'L' ? field(reinterpret_cast<const unsigned char*>(data.data()), data.size())
                      : pax_path(data);
      if (!next.empty()) long_name = next;
      continue;
    }
    if (type == 'K' || type == 'g') {  // long link name, pax global header: unused
      read_data(name, size, nullptr, nullptr);
      continue;
    }
    if (!long_name.empty()) {
      name = long_name;
      long_name.clear();
    }
    const std::string rel = safe_relative(archive, name);
    const bool regular = type == '0' || type == '\0' || type == '7';
    if (!regular || rel.empty() || (want && !want(rel))) {
      // Directories are created on demand; links, devices and FIFOs are not extracted.
      std::uint64_t data_size =
          (type == '1' || type == '2' || type == '3' || type == '4' || type == '5' || type == '6')
              ? 0
              : size;
      read_data(name, data_size, nullptr, nullptr);
      continue;
    }

    fs::path target = fs::path(out_dir) / rel;
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    if (ec)
      throw Error("tar.gz " + mapgate::quoted(archive) + ": cannot create directory " +
                  mapgate::quoted(target.parent_path().string()) + ": " + ec.message());
    std::FILE* f = std::fopen(target.c_str(), "wb");
    if (!f)
      throw Error("tar.gz " + mapgate::quoted(archive) + ": cannot create " +
                  mapgate::quoted(target.string()));
    try {
      read_data(name, size, f, nullptr);
    } catch (...) {
      std::fclose(f);
      fs::remove(target, ec);
      throw;
    }
    if (std::fclose(f) != 0) {
      fs::remove(target, ec);
      throw Error("tar.gz " + mapgate::quoted(archive) + ": writing " +
                  mapgate::quoted(target.string()) + " failed (disk full?)");
    }
    written.push_back(rel);
  }
  in.drain();  // verifies the gzip trailer (CRC, length) of what follows the end block
  return written;
}

}  // namespace mapgate

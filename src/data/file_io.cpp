// Whole-file reading with transparent gunzip (zlib, every member), and path helpers.
// Must match file_io.h: every failure is a mapgate::Error naming the path as given;
// a truncated or corrupt gzip stream is an error, never a shorter result, and no read
// holds more than its limit (plus one byte) in memory.
#include "data/file_io.h"

#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "common/error.h"

namespace mapgate {
namespace {

// What a file may take on disk to hold at most limit.max_bytes once gunzipped: deflate's
// stored blocks add 5 bytes per 64 KiB, each gzip member 18 bytes and its name.
SizeLimit raw_limit(const SizeLimit& limit) {
  return {limit.max_bytes + limit.max_bytes / 256 + (std::uint64_t{1} << 16),
          limit.why + ", with room for gzip's overhead"};
}

bool has_gzip_magic(const std::uint8_t* p, std::size_t n) {
  return n >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

// Gunzips every concatenated member of `in` (zlib, windowBits 15+32).
// Stops, with an error, as soon as the output passes limit.max_bytes (a gzip bomb).
std::vector<std::uint8_t> gunzip(const std::vector<std::uint8_t>& in, const std::string& path,
                                 const SizeLimit& limit) {
  auto fail = [&](const std::string& why) -> Error {
    return Error("gzip " + quoted(path) + ": truncated or corrupt stream (" + why + ")");
  };

  // Size hint: ISIZE of the last member (uncompressed size mod 2^32), capped by
  // deflate's maximum ratio (~1032:1) so a corrupt trailer cannot demand huge memory.
  std::size_t hint = 0;
  if (in.size() >= 18) {
    const std::uint8_t* t = in.data() + in.size() - 4;
    hint = std::size_t{t[0]} | std::size_t{t[1]} << 8 | std::size_t{t[2]} << 16 |
           std::size_t{t[3]} << 24;
    hint = std::min(hint, in.size() * 1032);
  }
  // One spare byte so the exact-size case never needs to grow to see the trailer; never
  // more than one byte past the limit, which is how a stream that inflates past it shows.
  const std::size_t cap = static_cast<std::size_t>(limit.max_bytes) + 1;
  std::vector<std::uint8_t> out(std::min(std::max<std::size_t>(hint + 1, 1 << 16), cap));

  z_stream zs{};
  if (inflateInit2(&zs, 15 + 32) != Z_OK) throw Error("gzip " + quoted(path) + ": zlib init failed");
  struct Guard {
    z_stream* zs;
    ~Guard() { inflateEnd(zs); }
  } guard{&zs};

  // zlib counts in uInt; feed at most this much per call so >4 GiB buffers work.
  constexpr std::size_t kMaxCall = std::size_t{1} << 30;
  std::size_t in_pos = 0, out_pos = 0;
  int member = 1;
  for (;;) {
    if (out_pos == out.size()) out.resize(std::min(out.size() + out.size() / 2, cap));
    std::size_t in_avail = std::min(in.size() - in_pos, kMaxCall);
    std::size_t out_avail = std::min(out.size() - out_pos, kMaxCall);
    zs.next_in = const_cast<Bytef*>(in.data() + in_pos);
    zs.avail_in = static_cast<uInt>(in_avail);
    zs.next_out = out.data() + out_pos;
    zs.avail_out = static_cast<uInt>(out_avail);
    int rc = inflate(&zs, Z_NO_FLUSH);
    in_pos += in_avail - zs.avail_in;
    out_pos += out_avail - zs.avail_out;
    if (out_pos > limit.max_bytes) {
      throw Error("gzip " + quoted(path) + ": decompresses to more than the " +
                  std::to_string(limit.max_bytes) + " bytes " + limit.why +
                  "; stopped there (a gzip bomb?)");
    }

    if (rc == Z_STREAM_END) {
      if (in_pos == in.size()) break;
      if (!has_gzip_magic(in.data() + in_pos, in.size() - in_pos)) {
        throw fail(std::to_string(in.size() - in_pos) + " bytes of trailing data after member " +
                   std::to_string(member) + ", at compressed byte " + std::to_string(in_pos));
      }
      if (inflateReset(&zs) != Z_OK) throw fail("zlib reset failed");
      ++member;
      continue;
    }
    if (rc == Z_OK || rc == Z_BUF_ERROR) {
      // inflate stops early only when output is full; room left with all input
      // consumed means the member needs bytes that are not there.
      if (in_pos == in.size() && zs.avail_out > 0) {
        throw fail("input ends inside member " + std::to_string(member) + " after " +
                   std::to_string(in.size()) + " compressed bytes, " + std::to_string(out_pos) +
                   " bytes decompressed");
      }
      continue;
    }
    std::string msg = zs.msg ? zs.msg : ("zlib error " + std::to_string(rc));
    throw fail(msg + " in member " + std::to_string(member) + " near compressed byte " +
               std::to_string(in_pos));
  }
  out.resize(out_pos);
  if (out.capacity() - out_pos > out_pos / 8) out.shrink_to_fit();
  return out;
}

}  // namespace

std::vector<std::uint8_t> read_file_bytes(const std::string& path, const SizeLimit& limit) {
  return decode_file_bytes(
      read_regular_file<std::vector<std::uint8_t>>(path, raw_limit(limit), "file"), path, limit);
}

std::vector<std::uint8_t> decode_file_bytes(std::vector<std::uint8_t> raw, const std::string& path,
                                            const SizeLimit& limit) {
  if (raw.empty()) throw Error("file " + quoted(path) + ": is empty (0 bytes)");
  if (has_gzip_magic(raw.data(), raw.size())) return gunzip(raw, path, limit);
  if (raw.size() > limit.max_bytes) throw Error("file " + quoted(path) + ": " + too_big(raw.size(), limit));
  return raw;
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && !S_ISDIR(st.st_mode);
}

void make_directories(const std::string& path, const std::string& subject) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) throw Error(subject + ": cannot create directory " + quoted(path) + ": " + ec.message());
}

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

std::string present_plain_or_gz(const std::string& dir, const std::string& name) {
  const std::string plain = join_path(dir, name);
  if (file_exists(plain)) return plain;
  if (file_exists(plain + ".gz")) return plain + ".gz";
  return "";
}

std::string find_plain_or_gz(const std::string& dir, const std::string& name) {
  std::string found = present_plain_or_gz(dir, name);
  if (!found.empty()) return found;
  const std::string plain = join_path(dir, name), gz = plain + ".gz";
  struct stat st {};
  if (!dir.empty() && (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))) {
    throw Error("directory " + quoted(dir) + ": does not exist (looking for " + quoted(name) +
                " or its .gz)");
  }
  throw Error("file " + quoted(plain) + ": missing (neither it nor " + quoted(gz) + " exists)");
}

}  // namespace mapgate

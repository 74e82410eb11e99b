// Zip directory and pickle checks before LibTorch reads a checkpoint (checkpoint_archive.h).
// Zip layout: PKWARE APPNOTE 6.3 (end of central directory, its zip64 form, central and
// local headers); pickle opcodes: Python's pickletools (protocols 0 to 5).
#include "train/checkpoint_archive.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <vector>

#include "common/error.h"

namespace mapgate {
namespace {

using Bytes = std::string;

// Most bytes read for the zip directory or one pickle record. A DenseNet-22 checkpoint's
// are 20 KB and 12 KB; the largest model mapgate builds stays far below.
constexpr std::uint64_t kMaxMetadataBytes = 64ull << 20;

std::uint64_t le(const Bytes& b, std::size_t at, int width) {
  std::uint64_t v = 0;
  for (int i = width - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[at + i]);
  return v;
}

class ArchiveFile {
 public:
  ArchiveFile(const std::string& path, std::uint64_t size) : in_(path, std::ios::binary), path_(path), size_(size) {}
  [[noreturn]] void fail(const std::string& what) const {
    throw Error("checkpoint " + quoted(path_) + ": not a readable LibTorch archive (" + what + ")");
  }
  Bytes read(std::uint64_t at, std::uint64_t count) {
    if (at > size_ || count > size_ - at) fail("the zip directory points past the end of the file");
    Bytes b(count, '\0');
    in_.seekg(static_cast<std::streamoff>(at));
    if (!in_.read(b.data(), static_cast<std::streamsize>(count))) fail("cannot read it");
    return b;
  }
  std::uint64_t size() const { return size_; }

 private:
  std::ifstream in_;
  std::string path_;
  std::uint64_t size_;
};

struct Directory {
  std::uint64_t entries = 0, size = 0, offset = 0;
};

// The end-of-central-directory record (and its zip64 form when a field overflows).
Directory find_directory(ArchiveFile& f) {
  const std::uint64_t tail = std::min<std::uint64_t>(f.size(), 22 + 65535);
  const Bytes end = f.read(f.size() - tail, tail);
  const std::size_t at = end.rfind(std::string("PK\x05\x06", 4));
  if (at == Bytes::npos || at + 22 > end.size()) f.fail("no zip end-of-directory record");
  Directory d{le(end, at + 10, 2), le(end, at + 12, 4), le(end, at + 16, 4)};
  if (d.entries != 0xFFFF && d.size != 0xFFFFFFFF && d.offset != 0xFFFFFFFF) return d;
  if (at < 20 || end.compare(at - 20, 4, std::string("PK\x06\x07", 4)) != 0) f.fail("no zip64 locator");
  const Bytes z = f.read(le(end, at - 20 + 8, 8), 56);
  if (z.compare(0, 4, std::string("PK\x06\x06", 4)) != 0) f.fail("no zip64 end-of-directory record");
  return {le(z, 32, 8), le(z, 40, 8), le(z, 48, 8)};
}

struct Record {
  std::string name;
  std::uint64_t method, packed, size, local;
};

// Central-directory entry at `at` of `dir`; `at` moves past it.
Record read_entry(ArchiveFile& f, const Bytes& dir, std::size_t& at) {
  if (at + 46 > dir.size() || dir.compare(at, 4, std::string("PK\x01\x02", 4)) != 0)
    f.fail("malformed zip directory entry");
  const std::uint64_t name_len = le(dir, at + 28, 2), extra_len = le(dir, at + 30, 2), comment_len = le(dir, at + 32, 2);
  if (at + 46 + name_len + extra_len + comment_len > dir.size()) f.fail("malformed zip directory entry");
  Record r{dir.substr(at + 46, name_len), le(dir, at + 10, 2), le(dir, at + 20, 4), le(dir, at + 24, 4),
           le(dir, at + 42, 4)};
  // zip64 extra field: the 8-byte forms of the fields that say 0xFFFFFFFF, in this order.
  for (std::size_t x = at + 46 + name_len, end = x + extra_len; x + 4 <= end;) {
    const std::uint64_t id = le(dir, x, 2), len = le(dir, x + 2, 2);
    if (x + 4 + len > end) f.fail("malformed zip extra field");
    if (id == 1) {
      std::size_t v = x + 4;
      for (std::uint64_t* field : {&r.size, &r.packed, &r.local}) {
        if (*field != 0xFFFFFFFF) continue;
        if (v + 8 > x + 4 + len) f.fail("malformed zip64 extra field");
        *field = le(dir, v, 8);
        v += 8;
      }
    }
    x += 4 + len;
  }
  at += 46 + name_len + extra_len + comment_len;
  return r;
}

// Where the record's bytes start, after checking that they lie inside the file and that
// its declared size is one its method can produce (the size LibTorch allocates).
std::uint64_t check_record(ArchiveFile& f, const Record& r) {
  const std::string who = "record " + quoted(r.name);
  if (r.method == 0 && r.packed != r.size) f.fail(who + " is stored but declares two sizes");
  if (r.method == 8 && r.size > 1032 * r.packed + 1024)
    f.fail(who + " declares " + std::to_string(r.size) + " bytes, more than deflate makes of " +
           std::to_string(r.packed));
  if (r.method != 0 && r.method != 8) f.fail(who + " uses zip method " + std::to_string(r.method));
  const Bytes local = f.read(r.local, 30);
  if (local.compare(0, 4, std::string("PK\x03\x04", 4)) != 0) f.fail(who + " has no local header");
  const std::uint64_t start = r.local + 30 + le(local, 26, 2) + le(local, 28, 2);
  if (start > f.size() || r.packed > f.size() - start) f.fail(who + " ends past the end of the file");
  return start;
}

// Argument of each opcode (pickletools): `n` bytes that follow it (kFixed), a length in `n`
// bytes then that many bytes (kLength), or `n` newline-terminated lines (kLines).
struct Arg {
  enum Kind : std::uint8_t { kUnknown, kFixed, kLength, kLines } kind = kUnknown;
  std::uint8_t n = 0;
};

std::array<Arg, 256> opcode_table() {
  std::array<Arg, 256> t{};
  auto set = [&t](const std::string& ops, Arg arg) {
    for (char c : ops) t[static_cast<unsigned char>(c)] = arg;
  };
  set(std::string("(.012NQRabde}lo]st)u") + "\x81\x85\x86\x87\x88\x89\x8f\x90\x91\x92\x93\x94\x97\x98",
      {Arg::kFixed, 0});
  set(std::string("Khq") + "\x80\x82", {Arg::kFixed, 1});
  set("M\x83", {Arg::kFixed, 2});
  set("Jjr\x84", {Arg::kFixed, 4});
  set("G\x95", {Arg::kFixed, 8});
  set("CU\x8a\x8c", {Arg::kLength, 1});
  set("TXB\x8b", {Arg::kLength, 4});
  set("\x8d\x8e\x96", {Arg::kLength, 8});
  set("FILPSVgp", {Arg::kLines, 1});
  set("ci", {Arg::kLines, 2});
  return t;
}

}  // namespace

std::string pickle_problem(const Bytes& b) {
  static const std::array<Arg, 256> kArgs = opcode_table();
  std::uint64_t memo = 0;  // entries the memo holds so far
  for (std::size_t at = 0; at < b.size();) {
    const auto op = static_cast<unsigned char>(b[at]);
    const std::size_t arg = at + 1, left = b.size() - arg;
    const std::string where = " at byte " + std::to_string(at);
    const Arg a = kArgs[op];
    std::size_t skip = a.n;
    if (a.kind == Arg::kUnknown) return "unknown pickle opcode " + std::to_string(op) + where;
    if (a.kind == Arg::kFixed && a.n > left) skip = std::string::npos;
    if (a.kind == Arg::kLength) {
      if (a.n > left) return "pickle ends inside an opcode" + where;
      const std::uint64_t n = le(b, arg, a.n);
      if (n > left - a.n)
        return "pickle length " + std::to_string(n) + where + " exceeds the " + std::to_string(left - a.n) +
               " bytes left";
      skip = a.n + n;
    }
    if (a.kind == Arg::kLines) {
      std::size_t end = b.find('\n', arg);
      if (end != Bytes::npos && a.n == 2) end = b.find('\n', end + 1);
      skip = end == Bytes::npos ? std::string::npos : end + 1 - arg;
    }
    if (skip == std::string::npos) return "pickle ends inside an opcode" + where;
    // Memo indices: LibTorch writes memo_table_[id] for a put; a get reads it.
    if (op == 'q' || op == 'r' || op == 0x94) {
      const std::uint64_t id = op == 0x94 ? memo : le(b, arg, op == 'q' ? 1 : 4);
      if (id > memo) return "pickle memo index " + std::to_string(id) + where + " skips past " + std::to_string(memo);
      if (id == memo) ++memo;
    } else if (op == 'h' || op == 'j') {
      const std::uint64_t id = le(b, arg, op == 'h' ? 1 : 4);
      if (id >= memo) return "pickle memo index " + std::to_string(id) + where + " was never set";
    }
    at = arg + skip;
    if (op == '.') return "";  // STOP: what follows is not read
  }
  return "pickle has no STOP opcode";
}

void check_checkpoint_archive(const std::string& path, std::uint64_t file_size) {
  ArchiveFile f(path, file_size);
  const Directory d = find_directory(f);
  if (d.entries > d.size / 46) f.fail("the zip directory holds fewer entries than it says");
  if (d.size > kMaxMetadataBytes) f.fail("a zip directory of " + std::to_string(d.size) + " bytes");
  const Bytes dir = f.read(d.offset, d.size);
  std::size_t at = 0;
  for (std::uint64_t i = 0; i < d.entries; ++i) {
    const Record r = read_entry(f, dir, at);
    const std::uint64_t start = check_record(f, r);
    const bool pickle = r.name.size() > 4 && r.name.compare(r.name.size() - 3, 3, "pkl") == 0;
    if (!pickle) continue;
    if (r.method != 0) f.fail("record " + quoted(r.name) + " is a compressed pickle");
    if (r.packed > kMaxMetadataBytes) f.fail("record " + quoted(r.name) + " is a pickle of " + std::to_string(r.packed) + " bytes");
    const std::string problem = pickle_problem(f.read(start, r.packed));
    if (!problem.empty()) f.fail("record " + quoted(r.name) + ": " + problem);
  }
}

}  // namespace mapgate

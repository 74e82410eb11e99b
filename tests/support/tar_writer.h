// Writes tar archives byte by byte as POSIX.1-1988 (ustar) and GNU tar describe them, for
// the extractor's tests (tests/unit/data/test_fetch.cpp) and its fuzz seeds
// (fuzz/make_corpus.cpp). Header-only, no dependencies.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace mapgate::test {

struct TarMember {
  std::string name;
  std::string data;
  char type = '0';
};

inline void put_octal(char* field, std::size_t width, std::uint64_t value) {
  std::snprintf(field, width, "%0*llo", static_cast<int>(width - 1),
                static_cast<unsigned long long>(value));
}

// One 512-byte ustar header, written by hand as POSIX.1-1988 describes it.
inline std::string tar_header(const std::string& name, std::uint64_t size, char type,
                       bool gnu_magic = false) {
  char h[512];
  std::memset(h, 0, sizeof h);
  std::memcpy(h, name.data(), std::min<std::size_t>(name.size(), 100));
  put_octal(h + 100, 8, 0644);
  put_octal(h + 108, 8, 1000);
  put_octal(h + 116, 8, 1000);
  put_octal(h + 124, 12, size);
  put_octal(h + 136, 12, 1700000000);
  h[156] = type;
  if (gnu_magic)
    std::memcpy(h + 257, "ustar  ", 8);
  else
    std::memcpy(h + 257,
                "ustar\0"
                "00",
                8);
  std::memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(h + 148, 8, "%06o", sum);  // six digits, NUL, then the space already there
  return std::string(h, sizeof h);
}

inline std::string tar_bytes(const std::vector<TarMember>& members, bool end_blocks = true) {
  std::string tar;
  for (const auto& m : members) {
    if (m.name.size() > 100) {  // GNU long name
      std::string longname = m.name + '\0';
      tar += tar_header("././@LongLink", longname.size(), 'L', true);
      tar += longname + std::string((512 - longname.size() % 512) % 512, '\0');
    }
    tar += tar_header(m.name, m.data.size(), m.type, m.name.size() > 100);
    tar += m.data + std::string((512 - m.data.size() % 512) % 512, '\0');
  }
  if (end_blocks) tar += std::string(1024, '\0');
  return tar;
}

}  // namespace mapgate::test

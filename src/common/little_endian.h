// Little-endian byte layouts of mapgate's binary files (the engine's weight file, the
// checkpoint): writing values, and a bounds-checked reader whose every failure is an
// Error "PREFIX truncated: WHAT needs N bytes at offset O, the file has S bytes".
// Header-only: both mapgate_engine (weights.cpp) and mapgate_core (checkpoint_file.cpp)
// use it.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"

namespace mapgate {

inline bool little_endian_host() {
  const std::uint16_t probe = 1;
  unsigned char first;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

inline void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// Appends the elements of `data` (float, std::int64_t, ...) in little-endian order.
template <typename T>
void put_elements(std::string& out, const std::vector<T>& data) {
  const std::size_t at = out.size();
  out.resize(at + sizeof(T) * data.size());
  if (data.empty()) return;
  std::memcpy(&out[at], data.data(), sizeof(T) * data.size());
  if (little_endian_host()) return;
  for (std::size_t i = 0; i < data.size(); ++i)
    for (std::size_t b = 0; b < sizeof(T) / 2; ++b)
      std::swap(out[at + sizeof(T) * i + b], out[at + sizeof(T) * i + sizeof(T) - 1 - b]);
}

class ByteReader {
 public:
  // `prefix` starts every message, e.g. "weights \"m.bin\": ".
  ByteReader(const std::string& bytes, std::string prefix) : bytes_(bytes), prefix_(std::move(prefix)) {}

  void need(std::size_t n, const std::string& what) const {
    if (bytes_.size() - pos_ < n) truncated(std::to_string(n), what);
  }
  [[noreturn]] void truncated(const std::string& n, const std::string& what) const {
    throw Error(prefix_ + "truncated: " + what + " needs " + n + " bytes at offset " + std::to_string(pos_) +
                ", the file has " + std::to_string(bytes_.size()) + " bytes");
  }
  std::uint32_t u32(const std::string& what) {
    need(4, what);
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes_[pos_ + i])) << (8 * i);
    pos_ += 4;
    return v;
  }
  std::string bytes(std::size_t n, const std::string& what) {
    need(n, what);
    std::string s = bytes_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  // n little-endian elements into `out` (resized to n), checked against the bytes left
  // before anything is allocated.
  template <typename T>
  void elements(std::vector<T>& out, std::size_t n, const std::string& what) {
    if (n > (bytes_.size() - pos_) / sizeof(T)) truncated(std::to_string(n) + " x " + std::to_string(sizeof(T)), what);
    out.resize(n);
    if (n) std::memcpy(out.data(), bytes_.data() + pos_, sizeof(T) * n);
    if (!little_endian_host()) {
      for (auto& v : out) {
        unsigned char* p = reinterpret_cast<unsigned char*>(&v);
        for (std::size_t b = 0; b < sizeof(T) / 2; ++b) std::swap(p[b], p[sizeof(T) - 1 - b]);
      }
    }
    pos_ += sizeof(T) * n;
  }
  std::size_t pos() const { return pos_; }
  std::size_t size() const { return bytes_.size(); }

 private:
  const std::string& bytes_;
  std::string prefix_;
  std::size_t pos_ = 0;
};

}  // namespace mapgate

// mapgate::Error is what library code throws for bad input or I/O failure;
// UsageError marks a bad flag. Only main() turns them into exit codes (1 and 2).
#pragma once

#include <stdexcept>
#include <string>

namespace mapgate {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

class UsageError : public Error {
 public:
  explicit UsageError(const std::string& what) : Error(what) {}
};

// Quote a path the way every message does: cifar10 "data_batch_1.bin": ...
// Names come from users and from files, so control bytes, quotes and backslashes are
// escaped C-style ("a\nb" for a newline): a message stays one line whatever it quotes.
// (The non-const overload beats std::quoted, which argument-dependent lookup also finds.)
inline std::string quoted(const std::string& s) {
  static const char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') out += {'\\', ch};
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) out += {'\\', 'x', kHex[c >> 4], kHex[c & 15]};
    else out += ch;
  }
  return out + "\"";
}
inline std::string quoted(std::string& s) { return quoted(static_cast<const std::string&>(s)); }

}  // namespace mapgate

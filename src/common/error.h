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
// (The non-const overload beats std::quoted, which argument-dependent lookup also finds.)
inline std::string quoted(const std::string& s) { return "\"" + s + "\""; }
inline std::string quoted(std::string& s) { return quoted(static_cast<const std::string&>(s)); }

}  // namespace mapgate

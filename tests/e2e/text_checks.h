// String checks shared by the tests that read messages: stderr, exceptions, reports.
#pragma once

#include <string>

namespace mapgate::test {

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Exactly one non-empty line, newline-terminated (the error-message contract).
inline bool one_line(const std::string& text) {
  return !text.empty() && text.back() == '\n' && text.find('\n') == text.size() - 1;
}

// The last line of `text`, without its newline; progress lines end in '\r' too.
inline std::string last_line(const std::string& text) {
  const std::string trimmed = text.substr(0, text.find_last_not_of('\n') + 1);
  return trimmed.substr(trimmed.find_last_of("\n\r") + 1);
}

}  // namespace mapgate::test

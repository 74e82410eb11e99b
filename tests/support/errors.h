// What a call throws, as text, for tests that compare whole messages. Header-only.
#pragma once

#include <exception>
#include <functional>
#include <string>

#include "common/error.h"

namespace mapgate::test {

// The mapgate::Error message `f` throws; a marked text for any other exception, and
// "(no exception)" when it returns.
inline std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("NOT a mapgate::Error: ") + e.what();
  }
  return "(no exception)";
}

}  // namespace mapgate::test

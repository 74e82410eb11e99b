// libFuzzer target: the engine's weight-file parser (parse_weights, which read_weights
// runs on the file's bytes; format in docs/weight-format.md). Only mapgate::Error may
// escape; weights it returns must pass check_weights, the check the writer applies.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/error.h"
#include "engine/weights.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  mapgate::Weights w;
  try {
    w = mapgate::parse_weights(std::string(reinterpret_cast<const char*>(data), size), "fuzz.mgw");
  } catch (const mapgate::Error&) {
    return 0;
  }
  mapgate::check_weights(w, "fuzz.mgw");  // throwing here (uncaught) is a finding
  return 0;
}

// JSON parsing for text from files, with a nesting limit: nlohmann's parser itself is
// iterative, but dump() and the value accessors recurse, so a header nested a million
// levels deep crashed (stack overflow) while its error message was being formatted.
// Header-only: both mapgate_data and mapgate_engine use it and share no library.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace mapgate {

// Deeper than anything mapgate writes (its deepest file nests 3 levels), shallow enough
// for any recursion over the parsed value.
inline constexpr int kMaxJsonDepth = 64;

// Parses `text`. Throws Error "`who` is not valid JSON (...)" or "`who` nests arrays and
// objects deeper than 64 levels", stopping at the first container past the limit.
inline nlohmann::json parse_json_limited(const std::string& text, const std::string& who,
                                         int max_depth = kMaxJsonDepth) {
  using Event = nlohmann::json::parse_event_t;
  // `depth` is the number of enclosing containers: 0 for the top-level value.
  const nlohmann::json::parser_callback_t limit = [&](int depth, Event event, nlohmann::json&) {
    if ((event == Event::object_start || event == Event::array_start) && depth >= max_depth)
      throw Error(who + " nests arrays and objects deeper than " + std::to_string(max_depth) +
                  " levels");
    return true;
  };
  try {
    return nlohmann::json::parse(text, limit);
  } catch (const nlohmann::json::exception& e) {
    throw Error(who + " is not valid JSON (" + e.what() + ")");
  }
}

}  // namespace mapgate

// Settings with a fixed set of named values (--gates off|reinforce|...): an enum in the
// code, its name on the command line and in config.json. A specialisation of
// ChoiceNames<E> gives the flag and the names; parse_choice and choice_name use it.
#pragma once

#include <string>
#include <utility>

#include "common/error.h"

namespace mapgate {

// Specialise for each enum E:
//   template <> struct ChoiceNames<E> {
//     static constexpr const char* kFlag = "--flag";
//     static constexpr std::pair<E, const char*> kNames[] = {{E::kA, "a"}, {E::kB, "b"}};
//   };
template <class E>
struct ChoiceNames;

// "a, b, c": the accepted names, in declaration order.
template <class E>
std::string choice_list() {
  std::string list;
  for (const auto& [value, name] : ChoiceNames<E>::kNames) list += std::string(list.empty() ? "" : ", ") + name;
  return list;
}

// The value called `text`; otherwise UsageError: --flag "text": unknown; expected one of a, b.
template <class E>
E parse_choice(const std::string& text) {
  for (const auto& [value, name] : ChoiceNames<E>::kNames)
    if (text == name) return value;
  throw UsageError(std::string(ChoiceNames<E>::kFlag) + " " + quoted(text) + ": unknown; expected one of " +
                   choice_list<E>());
}

// The name of `value` (every value has one: the table lists the whole enum).
template <class E>
const char* choice_name(E value) {
  for (const auto& [v, name] : ChoiceNames<E>::kNames)
    if (v == value) return name;
  throw Error(std::string(ChoiceNames<E>::kFlag) + ": value without a name");
}

}  // namespace mapgate

// A flag whose value is one of an enum's names (common/choice.h): parsed once, here at
// the edge; an unknown name is a usage error naming the flag and the names it takes.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "common/choice.h"

namespace mapgate {

template <class E>
CLI::Option* add_choice_option(CLI::App* cmd, E& target, const std::string& help) {
  auto set = [&target](const std::string& text) {
    try {
      target = parse_choice<E>(text);
    } catch (const UsageError& e) {
      throw CLI::ValidationError(e.what());  // CLI11 reports it (exit 2); a UsageError would escape parse()
    }
  };
  return cmd->add_option_function<std::string>(ChoiceNames<E>::kFlag, set, help)
      ->default_str(choice_name(target))
      ->type_name("{" + choice_list<E>() + "}");
}

}  // namespace mapgate

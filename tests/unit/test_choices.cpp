// The named settings of a training run (train/choices.h): every name parses to its value
// and back, and anything else is a usage error that names the flag and the choices.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "../support/errors.h"
#include "train/choices.h"

namespace mapgate {
namespace {

template <class E>
void expect_round_trip_and_rejection(const std::string& expected_list) {
  const std::string flag = ChoiceNames<E>::kFlag;
  EXPECT_EQ(choice_list<E>(), expected_list) << flag;
  std::set<int> values;
  for (const auto& [value, name] : ChoiceNames<E>::kNames) {
    EXPECT_EQ(parse_choice<E>(name), value) << flag << " " << name;
    EXPECT_STREQ(choice_name(value), name) << flag;
    values.insert(static_cast<int>(value));
  }
  EXPECT_EQ(values.size(), std::size(ChoiceNames<E>::kNames)) << flag << ": two names for one value";
  EXPECT_EQ(test::message_of([] { parse_choice<E>("bogus"); }),
            flag + " \"bogus\": unknown; expected one of " + expected_list);
  EXPECT_THROW(parse_choice<E>(""), UsageError) << flag;
  const std::string first = ChoiceNames<E>::kNames[0].second;
  EXPECT_THROW(parse_choice<E>(first + " "), UsageError) << flag << ": names match exactly";
}

TEST(Choices, EveryNameRoundTripsAndOthersAreUsageErrors) {
  expect_round_trip_and_rejection<Gates>("off, reinforce, gumbel, random, fixed, frozen");
  expect_round_trip_and_rejection<Schedule>("step, cosine");
  expect_round_trip_and_rejection<GateCost>("maps, macs");
  expect_round_trip_and_rejection<Baseline>("auto, greedy, engine, mean");
  expect_round_trip_and_rejection<CostGradient>("analytic, reinforce");
  expect_round_trip_and_rejection<ThetaMasks>("sampled, greedy");
  expect_round_trip_and_rejection<GateOptimizer>("adam, sgd");
  expect_round_trip_and_rejection<GateInput>("standardized, raw");
  expect_round_trip_and_rejection<GateWeights>("learned, frozen");
  expect_round_trip_and_rejection<BnStats>("masked, all");
  expect_round_trip_and_rejection<GateUnit>("map, layer");
}

TEST(Choices, UnknownNameIsQuotedOnOneLine) {
  EXPECT_EQ(test::message_of([] { parse_choice<Gates>("so\nft"); }),
            "--gates \"so\\nft\": unknown; expected one of off, reinforce, gumbel, random, fixed, frozen");
}

}  // namespace
}  // namespace mapgate

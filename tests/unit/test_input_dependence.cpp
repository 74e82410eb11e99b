// Input-dependence statistics of gate masks (src/model/input_dependence.h) on hand-made
// masks whose mutual information, rates and MAC percentiles are known exactly.
#include "model/input_dependence.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "common/error.h"

namespace mapgate {
namespace {

using Column = std::vector<std::uint8_t>;

// Masks from per-map columns of equal length: columns[j][i] is map j of example i.
MaskMatrix from_columns(const std::vector<Column>& columns) {
  MaskMatrix m;
  for (std::size_t i = 0; i < columns.at(0).size(); ++i) {
    std::vector<std::uint8_t> row;
    for (const Column& c : columns) row.push_back(c.at(i));
    m.append(row);
  }
  return m;
}

// A column with the first `on` of n examples on.
Column first_on(std::size_t n, std::size_t on) {
  Column c(n, 0);
  std::fill(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(on), 1);
  return c;
}

double binary_entropy(double p) { return -p * std::log2(p) - (1 - p) * std::log2(1 - p); }

TEST(MaskMatrix, AppendSetsMapsAndStoresRowMajor) {
  MaskMatrix m;
  m.append({1, 0, 1});
  m.append({0, 1, 1});
  EXPECT_EQ(m.examples, 2u);
  EXPECT_EQ(m.maps, 3u);
  EXPECT_EQ(m.bits, (std::vector<std::uint8_t>{1, 0, 1, 0, 1, 1}));
  EXPECT_EQ(m.at(0, 1), 0);
  EXPECT_EQ(m.at(1, 1), 1);
  EXPECT_THROW(m.at(2, 0), Error);
  EXPECT_THROW(m.at(0, 3), Error);
}

TEST(MaskMatrix, AppendRejectsAWrongLengthOrANonBinaryByte) {
  MaskMatrix m;
  m.append({1, 0, 1});
  EXPECT_THROW(m.append({1, 0}), Error);
  EXPECT_THROW(m.append({1, 0, 1, 1}), Error);
  EXPECT_THROW(m.append({1, 2, 0}), Error);
  EXPECT_EQ(m.examples, 1u);  // rejected rows are not half-added
  EXPECT_EQ(m.bits.size(), 3u);
}

TEST(MutualInformation, MapEqualToTheLabelOfTwoBalancedClassesIsOneBit) {
  const auto mi = per_map_mutual_information(from_columns({{0, 0, 1, 1}}), {0, 0, 1, 1}, 2);
  ASSERT_EQ(mi.size(), 1u);
  EXPECT_NEAR(mi[0], 1.0, 1e-12);
}

TEST(MutualInformation, ConstantMapIsZero) {
  const auto mi =
      per_map_mutual_information(from_columns({{1, 1, 1, 1}, {0, 0, 0, 0}}), {0, 0, 1, 1}, 2);
  EXPECT_NEAR(mi.at(0), 0.0, 1e-12);
  EXPECT_NEAR(mi.at(1), 0.0, 1e-12);
}

TEST(MutualInformation, MapIndependentOfTheLabelIsZero) {
  const auto mi = per_map_mutual_information(from_columns({{0, 1, 0, 1}}), {0, 0, 1, 1}, 2);
  EXPECT_NEAR(mi.at(0), 0.0, 1e-12);
}

TEST(MutualInformation, MapOnForTwoOfFourClassesIsOneBit) {
  const auto mi = per_map_mutual_information(from_columns({{1, 1, 0, 0, 1, 1, 0, 0}}),
                                             {0, 1, 2, 3, 0, 1, 2, 3}, 4);
  EXPECT_NEAR(mi.at(0), 1.0, 1e-12);
}

TEST(MutualInformation, PartlyInformativeMapIsEntropyMinusConditionalEntropy) {
  // m = 1,1,1,0 for y = 0,0,1,1: H(m) = H(3/4), H(m|y) = 1/2 * H(1/2) = 1/2.
  const auto mi = per_map_mutual_information(from_columns({{1, 1, 1, 0}}), {0, 0, 1, 1}, 2);
  EXPECT_NEAR(mi.at(0), binary_entropy(0.75) - 0.5, 1e-12);
}

TEST(MutualInformation, MeanOverMapsIsReported) {
  // Maps: label (1 bit), constant (0), independent (0), label again (1): mean 1/2.
  const MaskMatrix m = from_columns({{0, 0, 1, 1}, {1, 1, 1, 1}, {0, 1, 0, 1}, {0, 0, 1, 1}});
  const InputDependence d = measure_input_dependence(m, {0, 0, 1, 1}, 2, {1, 1, 1, 1});
  EXPECT_NEAR(d.mi_labels_bits, 0.5, 1e-12);
}

TEST(MutualInformation, RejectsBadLabelsAndSizes) {
  const MaskMatrix m = from_columns({{0, 0, 1, 1}});
  EXPECT_THROW(per_map_mutual_information(m, {0, 0, 1}, 2), Error);
  EXPECT_THROW(per_map_mutual_information(m, {0, 0, 1, 2}, 2), Error);
  EXPECT_THROW(per_map_mutual_information(m, {0, -1, 1, 1}, 2), Error);
  MaskMatrix truncated = m;
  truncated.bits.pop_back();
  EXPECT_THROW(per_map_mutual_information(truncated, {0, 0, 1, 1}, 2), Error);
}

TEST(MutualInformation, ShuffledLabelsGiveNearZeroWhenTheMaskCarriesTheLabel) {
  const std::size_t n = 200;
  std::vector<int> labels(n);
  Column label_bit(n);
  for (std::size_t i = 0; i < n; ++i) label_bit[i] = static_cast<std::uint8_t>(labels[i] = i % 2);
  const MaskMatrix m = from_columns({label_bit});
  const std::vector<std::int64_t> macs(n, 1000);
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    const InputDependence d = measure_input_dependence(m, labels, 2, macs, seed);
    EXPECT_NEAR(d.mi_labels_bits, 1.0, 1e-12);
    EXPECT_LT(d.mi_shuffled_labels_bits, 0.05) << "seed " << seed;
    EXPECT_GE(d.mi_shuffled_labels_bits, 0.0) << "seed " << seed;
  }
}

TEST(InputDependence, CountsDistinctMaskRows) {
  MaskMatrix m;
  for (const auto& row : std::vector<Column>{{1, 0}, {1, 0}, {0, 1}, {1, 1}, {0, 1}}) m.append(row);
  const InputDependence d = measure_input_dependence(m, {0, 0, 0, 0, 0}, 1, {1, 1, 1, 1, 1});
  EXPECT_EQ(d.distinct_masks, 3u);
}

TEST(InputDependence, ConditionalFractionCountsMapsOnInFiveToNinetyFivePercent) {
  // On-rates 0, 0.04, 0.05, 0.5, 0.95, 0.96, 1 over 100 examples: the middle three count.
  const std::size_t n = 100;
  std::vector<Column> columns;
  for (std::size_t on : {0, 4, 5, 50, 95, 96, 100}) columns.push_back(first_on(n, on));
  const InputDependence d = measure_input_dependence(from_columns(columns), std::vector<int>(n, 0),
                                                     1, std::vector<std::int64_t>(n, 1));
  EXPECT_NEAR(d.conditional_fraction, 3.0 / 7.0, 1e-12);
}

TEST(InputDependence, EqualMacsHaveZeroSpread) {
  const MaskMatrix m = from_columns({{0, 1, 0, 1}});
  const InputDependence d = measure_input_dependence(m, {0, 0, 0, 0}, 1, {100, 100, 100, 100});
  EXPECT_DOUBLE_EQ(d.macs_mean, 100.0);
  EXPECT_DOUBLE_EQ(d.macs_cv, 0.0);
  EXPECT_DOUBLE_EQ(d.macs_p5, 100.0);
  EXPECT_DOUBLE_EQ(d.macs_p50, 100.0);
  EXPECT_DOUBLE_EQ(d.macs_p95, 100.0);
}

TEST(InputDependence, TwoMacsValuesGiveKnownCvAndNearestRankPercentiles) {
  // {300, 100}: mean 200, population std 100; ranks ceil(0.1)=1, ceil(1.0)=1, ceil(1.9)=2.
  const InputDependence d = measure_input_dependence(from_columns({{1, 0}}), {0, 0}, 1, {300, 100});
  EXPECT_DOUBLE_EQ(d.macs_mean, 200.0);
  EXPECT_DOUBLE_EQ(d.macs_cv, 0.5);
  EXPECT_DOUBLE_EQ(d.macs_p5, 100.0);
  EXPECT_DOUBLE_EQ(d.macs_p50, 100.0);
  EXPECT_DOUBLE_EQ(d.macs_p95, 300.0);
}

TEST(InputDependence, PercentilesOfTwentyUnsortedValues) {
  // MACs 20, 19, ..., 1: ranks ceil(1)=1, ceil(10)=10, ceil(19)=19 of the sorted values.
  const std::size_t n = 20;
  std::vector<std::int64_t> macs(n);
  for (std::size_t i = 0; i < n; ++i) macs[i] = static_cast<std::int64_t>(n - i);
  const InputDependence d = measure_input_dependence(from_columns({first_on(n, 10)}),
                                                     std::vector<int>(n, 0), 1, macs);
  EXPECT_DOUBLE_EQ(d.macs_p5, 1.0);
  EXPECT_DOUBLE_EQ(d.macs_p50, 10.0);
  EXPECT_DOUBLE_EQ(d.macs_p95, 19.0);
}

TEST(InputDependence, SizeMismatchThrows) {
  const MaskMatrix m = from_columns({{0, 0, 1, 1}});
  EXPECT_THROW(measure_input_dependence(m, {0, 0, 1, 1}, 2, {1, 1, 1}), Error);
  EXPECT_THROW(measure_input_dependence(m, {0, 0, 1}, 2, {1, 1, 1, 1}), Error);
  EXPECT_THROW(measure_input_dependence(m, {0, 0, 1, 5}, 2, {1, 1, 1, 1}), Error);
  EXPECT_NO_THROW(measure_input_dependence(m, {0, 0, 1, 1}, 2, {1, 1, 1, 1}));
}

TEST(InputDependence, ZeroExamplesGiveZeros) {
  const InputDependence d = measure_input_dependence(MaskMatrix{}, {}, 10, {});
  EXPECT_EQ(d.macs_mean, 0.0);
  EXPECT_EQ(d.macs_cv, 0.0);
  EXPECT_EQ(d.macs_p50, 0.0);
  EXPECT_EQ(d.distinct_masks, 0u);
  EXPECT_EQ(d.conditional_fraction, 0.0);
  EXPECT_EQ(d.mi_labels_bits, 0.0);
  EXPECT_EQ(d.mi_shuffled_labels_bits, 0.0);
  EXPECT_THROW(measure_input_dependence(MaskMatrix{}, {}, 10, {5}), Error);
}

TEST(InputDependence, ToJsonWritesEveryField) {
  InputDependence d;
  d.macs_mean = 1;
  d.macs_cv = 2;
  d.macs_p5 = 3;
  d.macs_p50 = 4;
  d.macs_p95 = 5;
  d.distinct_masks = 6;
  d.conditional_fraction = 0.7;
  d.mi_labels_bits = 0.8;
  d.mi_shuffled_labels_bits = 0.9;
  const nlohmann::json j = to_json(d);
  EXPECT_EQ(j.size(), 9u);
  EXPECT_EQ(j.at("macs_mean").get<double>(), 1);
  EXPECT_EQ(j.at("macs_cv").get<double>(), 2);
  EXPECT_EQ(j.at("macs_p5").get<double>(), 3);
  EXPECT_EQ(j.at("macs_p50").get<double>(), 4);
  EXPECT_EQ(j.at("macs_p95").get<double>(), 5);
  EXPECT_EQ(j.at("distinct_masks").get<std::size_t>(), 6u);
  EXPECT_EQ(j.at("conditional_fraction").get<double>(), 0.7);
  EXPECT_EQ(j.at("mi_labels_bits").get<double>(), 0.8);
  EXPECT_EQ(j.at("mi_shuffled_labels_bits").get<double>(), 0.9);
}

TEST(ShufflePermutation, IsAPermutationWithoutFixedPoints) {
  for (std::size_t n : {2, 3, 10, 1000}) {
    for (std::uint64_t seed = 0; seed < 20; ++seed) {
      const auto p = shuffle_permutation(n, seed);
      ASSERT_EQ(p.size(), n);
      for (std::size_t i = 0; i < n; ++i) ASSERT_NE(p[i], i) << "n " << n << " seed " << seed;
      auto sorted = p;
      std::sort(sorted.begin(), sorted.end());
      std::vector<std::size_t> identity(n);
      std::iota(identity.begin(), identity.end(), std::size_t{0});
      ASSERT_EQ(sorted, identity) << "n " << n << " seed " << seed;
    }
  }
}

TEST(ShufflePermutation, IsDeterministicForASeedAndDiffersBetweenSeeds) {
  EXPECT_EQ(shuffle_permutation(1000, 7), shuffle_permutation(1000, 7));
  EXPECT_NE(shuffle_permutation(1000, 7), shuffle_permutation(1000, 8));
  EXPECT_NE(shuffle_permutation(10, 1), shuffle_permutation(10, 2));
}

TEST(ShufflePermutation, ReachesEveryDerangementOfThree) {
  // The two 3-cycles are the only derangements of 3 elements; both must appear.
  std::vector<std::vector<std::size_t>> seen;
  for (std::uint64_t seed = 0; seed < 50; ++seed) {
    const auto p = shuffle_permutation(3, seed);
    if (std::find(seen.begin(), seen.end(), p) == seen.end()) seen.push_back(p);
  }
  EXPECT_EQ(seen.size(), 2u);
}

TEST(ShufflePermutation, IsTheIdentityForZeroAndOne) {
  EXPECT_TRUE(shuffle_permutation(0, 3).empty());
  EXPECT_EQ(shuffle_permutation(1, 3), (std::vector<std::size_t>{0}));
}

}  // namespace
}  // namespace mapgate

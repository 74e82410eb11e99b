// Input-dependence statistics of gate masks (input_dependence.h). MI is the plug-in
// estimate sum p(m,y) log2(p(m,y) / (p(m) p(y))) from counts; percentiles use the same
// nearest-rank rule as EvalResult::macs_percentile (train/evaluate.cpp).
#include "model/input_dependence.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <string>

#include "common/error.h"

namespace mapgate {
namespace {

// Uniform in [0, bound), bound > 0, by rejection: no modulo bias, and unlike
// std::uniform_int_distribution the same on every standard library.
std::uint64_t uniform_below(std::mt19937_64& rng, std::uint64_t bound) {
  const std::uint64_t threshold = (0 - bound) % bound;  // 2^64 mod bound
  for (;;) {
    const std::uint64_t r = rng();
    if (r >= threshold) return r % bound;
  }
}

void check_shape(const MaskMatrix& masks, const std::vector<int>& labels, int num_classes) {
  if (masks.bits.size() != masks.examples * masks.maps)
    throw Error("masks: " + std::to_string(masks.bits.size()) + " bits for " +
                std::to_string(masks.examples) + " examples x " + std::to_string(masks.maps) +
                " maps");
  if (labels.size() != masks.examples)
    throw Error("labels: " + std::to_string(labels.size()) + " entries for " +
                std::to_string(masks.examples) + " mask rows");
  if (num_classes < 1)
    throw Error("num_classes " + std::to_string(num_classes) + ": must be at least 1");
  for (std::size_t i = 0; i < labels.size(); ++i)
    if (labels[i] < 0 || labels[i] >= num_classes)
      throw Error("label " + std::to_string(labels[i]) + " of example " + std::to_string(i) +
                  ": outside [0, " + std::to_string(num_classes) + ")");
}

// One cell of the MI sum: (n_my / n) * log2(n_my * n / (n_m * n_y)); 0 log 0 = 0.
double mi_term(double n_my, double n_m, double n_y, double n) {
  return n_my == 0 ? 0.0 : n_my / n * std::log2(n_my * n / (n_m * n_y));
}

double mean_of(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return v.empty() ? 0.0 : sum / static_cast<double>(v.size());
}

double nearest_rank(const std::vector<std::int64_t>& sorted, double q) {
  const auto rank = static_cast<std::size_t>(std::ceil(q * sorted.size()));
  return static_cast<double>(sorted[std::min(sorted.size() - 1, rank > 0 ? rank - 1 : 0)]);
}

// Fills the MACs fields; macs is non-empty.
void macs_stats(const std::vector<std::int64_t>& macs, InputDependence& d) {
  const double n = static_cast<double>(macs.size());
  double sum = 0, squares = 0;
  for (auto m : macs) sum += static_cast<double>(m);
  d.macs_mean = sum / n;
  for (auto m : macs) squares += (m - d.macs_mean) * (m - d.macs_mean);
  const double std_dev = std::sqrt(squares / n);
  d.macs_cv = d.macs_mean == 0 ? 0.0 : std_dev / d.macs_mean;
  std::vector<std::int64_t> sorted = macs;
  std::sort(sorted.begin(), sorted.end());
  d.macs_p5 = nearest_rank(sorted, 0.05);
  d.macs_p50 = nearest_rank(sorted, 0.5);
  d.macs_p95 = nearest_rank(sorted, 0.95);
}

std::size_t count_distinct_rows(const MaskMatrix& masks) {
  std::set<std::vector<std::uint8_t>> rows;
  for (std::size_t i = 0; i < masks.examples; ++i) {
    const auto begin = masks.bits.begin() + static_cast<std::ptrdiff_t>(i * masks.maps);
    rows.emplace(begin, begin + static_cast<std::ptrdiff_t>(masks.maps));
  }
  return rows.size();
}

// Maps on in at least 5% and at most 95% of examples, compared in integers: 20*on in [n, 19n].
double conditional_fraction(const MaskMatrix& masks) {
  if (masks.maps == 0) return 0;
  std::size_t conditional = 0;
  for (std::size_t j = 0; j < masks.maps; ++j) {
    std::size_t on = 0;
    for (std::size_t i = 0; i < masks.examples; ++i) on += masks.bits[i * masks.maps + j];
    if (20 * on >= masks.examples && 20 * on <= 19 * masks.examples) ++conditional;
  }
  return static_cast<double>(conditional) / static_cast<double>(masks.maps);
}

}  // namespace

std::uint8_t MaskMatrix::at(std::size_t i, std::size_t j) const {
  if (i >= examples || j >= maps)
    throw Error("masks: (" + std::to_string(i) + ", " + std::to_string(j) + ") is outside " +
                std::to_string(examples) + " examples x " + std::to_string(maps) + " maps");
  return bits[i * maps + j];
}

void MaskMatrix::append(const std::vector<std::uint8_t>& row) {
  if (examples == 0 && maps == 0) maps = row.size();
  if (row.size() != maps)
    throw Error("masks: row " + std::to_string(examples) + " has " + std::to_string(row.size()) +
                " maps, earlier rows have " + std::to_string(maps));
  for (std::size_t j = 0; j < row.size(); ++j)
    if (row[j] > 1)
      throw Error("masks: row " + std::to_string(examples) + " map " + std::to_string(j) +
                  " is " + std::to_string(row[j]) + "; expected 0 or 1");
  bits.insert(bits.end(), row.begin(), row.end());
  ++examples;
}

std::vector<double> per_map_mutual_information(const MaskMatrix& masks,
                                               const std::vector<int>& labels, int num_classes) {
  check_shape(masks, labels, num_classes);
  const std::size_t n = masks.examples, maps = masks.maps, k = num_classes;
  std::vector<double> mi(maps, 0.0);
  if (n == 0) return mi;
  std::vector<std::size_t> class_count(k, 0), on_by_class(maps * k, 0);  // [map][class]
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t y = labels[i];
    ++class_count[y];
    for (std::size_t j = 0; j < maps; ++j) on_by_class[j * k + y] += masks.bits[i * maps + j];
  }
  for (std::size_t j = 0; j < maps; ++j) {
    double on = 0;
    for (std::size_t y = 0; y < k; ++y) on += on_by_class[j * k + y];
    const double off = static_cast<double>(n) - on;
    for (std::size_t y = 0; y < k; ++y) {
      const double n_on = on_by_class[j * k + y], n_y = class_count[y];
      mi[j] += mi_term(n_on, on, n_y, n) + mi_term(n_y - n_on, off, n_y, n);
    }
  }
  return mi;
}

InputDependence measure_input_dependence(const MaskMatrix& masks, const std::vector<int>& labels,
                                         int num_classes, const std::vector<std::int64_t>& macs,
                                         std::uint64_t seed) {
  if (macs.size() != masks.examples)
    throw Error("macs: " + std::to_string(macs.size()) + " entries for " +
                std::to_string(masks.examples) + " mask rows");
  InputDependence d;
  const std::vector<double> mi = per_map_mutual_information(masks, labels, num_classes);
  if (masks.examples == 0) return d;
  macs_stats(macs, d);
  d.distinct_masks = count_distinct_rows(masks);
  d.conditional_fraction = conditional_fraction(masks);
  d.mi_labels_bits = mean_of(mi);
  const std::vector<std::size_t> perm = shuffle_permutation(labels.size(), seed);
  std::vector<int> shuffled(labels.size());
  for (std::size_t i = 0; i < labels.size(); ++i) shuffled[i] = labels[perm[i]];
  d.mi_shuffled_labels_bits = mean_of(per_map_mutual_information(masks, shuffled, num_classes));
  return d;
}

std::vector<std::size_t> shuffle_permutation(std::size_t n, std::uint64_t seed) {
  std::vector<std::size_t> p(n);
  for (std::size_t i = 0; i < n; ++i) p[i] = i;
  std::mt19937_64 rng(seed);
  // Sattolo: j < i (never j == i), so the result is a single n-cycle.
  for (std::size_t i = n; i-- > 1;) std::swap(p[i], p[uniform_below(rng, i)]);
  return p;
}

nlohmann::json to_json(const InputDependence& d) {
  return {{"macs_mean", d.macs_mean},
          {"macs_cv", d.macs_cv},
          {"macs_p5", d.macs_p5},
          {"macs_p50", d.macs_p50},
          {"macs_p95", d.macs_p95},
          {"distinct_masks", d.distinct_masks},
          {"conditional_fraction", d.conditional_fraction},
          {"mi_labels_bits", d.mi_labels_bits},
          {"mi_shuffled_labels_bits", d.mi_shuffled_labels_bits}};
}

}  // namespace mapgate

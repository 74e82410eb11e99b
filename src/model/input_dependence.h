// How input-dependent a gated network's masks are: spread of per-example MACs, distinct
// masks, maps that are neither always on nor always off, and per-map I(mask; label) in bits
// against a shuffled-label control. No LibTorch: it works on 0/1 masks collected elsewhere.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

namespace mapgate {

// Per-example binary masks of all gated maps: examples x maps, row-major, 0/1 bytes.
struct MaskMatrix {
  std::size_t examples = 0, maps = 0;
  std::vector<std::uint8_t> bits;  // bits[i * maps + j]

  std::uint8_t at(std::size_t i, std::size_t j) const;  // throws Error out of range
  // Adds one example. Sets `maps` on the first row if it is 0; throws Error on a row of
  // another length or a byte other than 0 or 1.
  void append(const std::vector<std::uint8_t>& row);
};

struct InputDependence {
  double macs_mean = 0, macs_cv = 0;  // cv = population std / mean of per-example MACs
  // Nearest rank, as EvalResult::macs_percentile: rank ceil(q*n), 1-based, clamped to [1,n].
  double macs_p5 = 0, macs_p50 = 0, macs_p95 = 0;
  std::size_t distinct_masks = 0;     // distinct mask rows
  double conditional_fraction = 0;    // maps whose on-rate is in [0.05, 0.95]
  double mi_labels_bits = 0;          // mean over maps of I(m_j; y), plug-in, bits
  // The same with labels permuted by shuffle_permutation(n, seed): the estimator's bias floor.
  double mi_shuffled_labels_bits = 0;
};

// Zero examples give a zero-filled result. Throws Error when labels or macs do not have
// one entry per example, or a label is outside [0, num_classes).
InputDependence measure_input_dependence(const MaskMatrix& masks, const std::vector<int>& labels,
                                         int num_classes, const std::vector<std::int64_t>& macs,
                                         std::uint64_t seed = 1);

// I(m_j; y) in bits for every map j, plug-in estimate from counts. Throws Error on a size
// mismatch or a label out of range.
std::vector<double> per_map_mutual_information(const MaskMatrix& masks,
                                               const std::vector<int>& labels, int num_classes);

// A permutation of 0..n-1 with no fixed point for n >= 2 (Sattolo's algorithm: one n-cycle),
// the same on every platform for a seed (std::mt19937_64, own unbiased draw). n <= 1: identity.
// Gives each example another example's mask (mask-shuffle ablation) or label (MI control).
std::vector<std::size_t> shuffle_permutation(std::size_t n, std::uint64_t seed);

// Keys: macs_mean, macs_cv, macs_p5, macs_p50, macs_p95, distinct_masks,
// conditional_fraction, mi_labels_bits, mi_shuffled_labels_bits.
nlohmann::json to_json(const InputDependence& d);

}  // namespace mapgate

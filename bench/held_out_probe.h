// A probe fit on one half of a set of examples and scored on the other (the research
// programs gate_input_probe.cpp and early_exit_probe.cpp): features x (N, D) -> `classes`
// logits (1: logistic), linear or with one ReLU layer of `hidden` units, fit by full-batch
// Adam (300 steps) with a small L2 penalty on the first half, standardised by that half's
// statistics; returns its logits on the second half (N - N/2 rows).
#pragma once

#include <torch/types.h>

namespace mapgate {

torch::Tensor probe_held_out(const torch::Tensor& x, const torch::Tensor& target, int classes, int hidden = 0);

}  // namespace mapgate

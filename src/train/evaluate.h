// Test-set evaluation of a model in eval mode: accuracy, loss and per-class accuracy.
#pragma once

#include <cstdint>
#include <vector>

#include "data/dataset.h"
#include "data/loader.h"
#include "model/densenet.h"

namespace mapgate {

struct EvalResult {
  std::size_t examples = 0;
  std::size_t correct = 0;
  double loss = 0;                        // mean cross-entropy
  std::vector<std::size_t> class_total, class_correct;
  double accuracy() const { return examples ? double(correct) / examples : 0; }
};

EvalResult evaluate(DenseNet& model, const Dataset& data, const Normalization& norm,
                    int batch_size = 256);

}  // namespace mapgate

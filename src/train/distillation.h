// Knowledge distillation (Hinton et al. 2015) from a trained teacher while a network
// trains (--distill RUN): the weights' loss becomes (1 - alpha) CE + alpha T^2
// KL(softmax(teacher / T) || softmax(student / T)). Gates, where there are any, still
// learn from the CE reward. docs/method.md, "Distillation".
#pragma once

#include <string>

#include <torch/types.h>

#include "model/densenet.h"
#include "train/trained_model.h"

namespace mapgate {

struct DistillSettings {
  double weight = 0.5;       // alpha
  double temperature = 4.0;  // T
};

// T^2 * KL(softmax(teacher / T) || softmax(student / T)), averaged over the batch; its
// gradient flows into `student` only.
torch::Tensor distillation_loss(const torch::Tensor& student, const torch::Tensor& teacher, double temperature);

// The teacher for a run on `dataset` with `classes` classes: a trained model in eval mode,
// gradients off, fed the student's images re-normalised to its own input normalisation.
class Teacher {
 public:
  // Throws Error naming the teacher's checkpoint when it was trained on another dataset
  // or class count.
  Teacher(const std::string& run_or_file, const std::string& dataset, int classes,
          const Normalization& student_normalization, torch::Device device = torch::kCPU);
  // Logits for `images` normalised as the student's (no gradient).
  torch::Tensor logits(const torch::Tensor& images);
  const std::string& path() const { return model_.path; }

 private:
  TrainedModel model_;
  torch::Tensor scale_, shift_;  // (1, C, 1, 1): student input -> teacher input
};

}  // namespace mapgate

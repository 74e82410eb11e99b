// Knowledge distillation; see distillation.h.
#include "train/distillation.h"

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/loss.h>

#include "common/error.h"
#include "train/checkpoint.h"

namespace mapgate {

namespace F = torch::nn::functional;

torch::Tensor distillation_loss(const torch::Tensor& student, const torch::Tensor& teacher, double temperature) {
  const auto log_p_student = F::log_softmax(student / temperature, F::LogSoftmaxFuncOptions(1));
  const auto p_teacher = F::softmax(teacher.detach() / temperature, F::SoftmaxFuncOptions(1));
  return temperature * temperature *
         F::kl_div(log_p_student, p_teacher, F::KLDivFuncOptions().reduction(torch::kBatchMean));
}

Teacher::Teacher(const std::string& run_or_file, const std::string& dataset, int classes,
                 const Normalization& student, torch::Device device)
    : model_(load_trained_model(run_or_file)) {
  const std::string who = "--distill: checkpoint " + quoted(model_.path) + ": ";
  if (model_.dataset != dataset) throw Error(who + "trained on " + model_.dataset + ", this run trains on " + dataset);
  if (model_.config.num_classes != classes)
    throw Error(who + std::to_string(model_.config.num_classes) + " classes, this run has " + std::to_string(classes));
  if (student.mean.size() != model_.normalization.mean.size())
    throw Error(who + std::to_string(model_.normalization.mean.size()) + " input channels, this run has " +
                std::to_string(student.mean.size()));
  // x_teacher = (x * std_s + mean_s - mean_t) / std_t, per channel.
  const auto c = static_cast<std::int64_t>(student.mean.size());
  auto vec = [c, device](const std::vector<float>& v) { return torch::tensor(v).view({1, c, 1, 1}).to(device); };
  scale_ = vec(student.std) / vec(model_.normalization.std);
  shift_ = (vec(student.mean) - vec(model_.normalization.mean)) / vec(model_.normalization.std);
  model_.model->to(device);
  model_.model->eval();
  for (auto& p : model_.model->parameters()) p.set_requires_grad(false);
}

torch::Tensor Teacher::logits(const torch::Tensor& images) {
  torch::NoGradGuard no_grad;
  return model_.model->forward(images * scale_ + shift_);
}

}  // namespace mapgate

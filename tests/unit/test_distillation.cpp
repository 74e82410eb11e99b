// Knowledge distillation (src/train/distillation.h): the loss against its closed form and
// its gradient, and the teacher fed the student's images in its own normalisation.
#include "train/distillation.h"

#include <gtest/gtest.h>

#include "../support/errors.h"
#include "../e2e/text_checks.h"
#include "../support/files.h"
#include "train/checkpoint.h"

namespace mapgate {
namespace {

TEST(Distillation, LossIsTSquaredKlAndItsGradientIsTheSoftmaxDifference) {
  const auto student = torch::tensor({{1.0, -2.0, 0.5}, {0.0, 3.0, -1.0}}, torch::kDouble).requires_grad_();
  const auto teacher = torch::tensor({{2.0, 0.0, -1.0}, {0.5, 0.5, 2.0}}, torch::kDouble);
  const double t = 3.0;
  const auto loss = distillation_loss(student, teacher, t);
  const auto p = torch::softmax(teacher / t, 1), q = torch::softmax(student.detach() / t, 1);
  const double kl = (p * (p.log() - q.log())).sum().item<double>() / 2;  // batch mean
  EXPECT_NEAR(loss.item<double>(), t * t * kl, 1e-12);
  loss.backward();
  // d/ds [T^2 KL(p || softmax(s/T))] / N = T (q - p) / N
  EXPECT_TRUE(torch::allclose(student.grad(), t * (q - p) / 2, 1e-12, 1e-12)) << student.grad();
  EXPECT_NEAR(distillation_loss(teacher, teacher, t).item<double>(), 0.0, 1e-12);
}

TEST(Distillation, TeacherSeesImagesInItsOwnNormalisation) {
  test::ScratchDir dir;
  DenseNetConfig c;
  c.depth = 7;
  c.growth = 2;
  c.image_size = 8;
  torch::manual_seed(3);
  DenseNet model(c);
  const Normalization teacher_norm{{0.5f, 0.4f, 0.3f}, {0.2f, 0.25f, 0.3f}};
  const Normalization student_norm{{0.45f, 0.5f, 0.35f}, {0.22f, 0.2f, 0.28f}};
  const nlohmann::json state = {{"model", to_json(c)},
                                {"dataset", "cifar10"},
                                {"class_names", {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}},
                                {"normalization", {{"mean", teacher_norm.mean}, {"std", teacher_norm.std}}}};
  const std::string path = dir / "teacher.pt";
  save_checkpoint(path, *model, nullptr, state);

  Teacher teacher(path, "cifar10", 10, student_norm);
  const auto raw = torch::rand({2, 3, 8, 8});  // pixels in [0, 1]
  auto normalise = [&](const Normalization& n) {
    return (raw - torch::tensor(n.mean).view({1, 3, 1, 1})) / torch::tensor(n.std).view({1, 3, 1, 1});
  };
  model->eval();
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::allclose(teacher.logits(normalise(student_norm)), model->forward(normalise(teacher_norm)),
                              1e-4, 1e-5));

  EXPECT_TRUE(test::contains(test::message_of([&] { Teacher(path, "cifar100", 10, student_norm); }),
                             "trained on cifar10, this run trains on cifar100"));
  EXPECT_TRUE(test::contains(test::message_of([&] { Teacher(path, "cifar10", 100, student_norm); }),
                             "10 classes, this run has 100"));
}

}  // namespace
}  // namespace mapgate

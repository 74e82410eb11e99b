// Evaluation loop: no augmentation, no shuffling, no gradients.
#include "train/evaluate.h"

namespace mapgate {

EvalResult evaluate(DenseNet& model, const Dataset& data, const Normalization& norm,
                    int batch_size) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  LoaderOptions options;
  options.batch_size = batch_size;
  options.shuffle = false;
  options.augment = false;
  Loader loader(data, norm, options);
  loader.start_epoch(0);

  EvalResult r;
  r.class_total.assign(data.num_classes, 0);
  r.class_correct.assign(data.num_classes, 0);
  double loss_sum = 0;
  Batch batch;
  while (loader.next(batch)) {
    auto images = torch::from_blob(batch.images.data(),
                                   {batch.size, data.channels, data.height, data.width});
    auto labels = torch::from_blob(batch.labels.data(), {batch.size}, torch::kInt64);
    auto logits = model->forward(images);
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, labels,
                    torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    auto predicted = logits.argmax(1);
    auto hits = predicted.eq(labels);
    const auto* hit = hits.data_ptr<bool>();
    for (int i = 0; i < batch.size; ++i) {
      const auto label = batch.labels[i];
      ++r.class_total[label];
      if (hit[i]) {
        ++r.class_correct[label];
        ++r.correct;
      }
    }
    r.examples += batch.size;
  }
  r.loss = r.examples ? loss_sum / r.examples : 0;
  if (was_training) model->train();
  return r;
}

}  // namespace mapgate

// --amp bf16 (docs/scale.md): LibTorch's automatic mixed precision over a scope. Inside
// it, convolutions and linear layers of tensors on the scope's device run in bfloat16
// (autocast's own op lists); the model keeps BatchNorm, gate probabilities and logits in
// float32 (src/model). Scopes nest; leaving the outermost one drops autocast's cache of
// cast weights, as PyTorch's `torch.autocast` does.
#pragma once

#include <torch/types.h>

namespace mapgate {

class AutocastScope {
 public:
  // enabled false: a no-op scope (the default float32 path, untouched).
  AutocastScope(torch::Device device, bool enabled);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool enabled_;
  torch::DeviceType type_;
  bool was_enabled_ = false;
  torch::ScalarType was_dtype_ = torch::kFloat;
};

}  // namespace mapgate

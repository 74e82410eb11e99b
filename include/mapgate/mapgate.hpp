// mapgate engine, C++ interface: a header-only RAII wrapper over the C interface
// (mapgate.h), so that the library's ABI is the C one. Failures throw mapgate::StatusError
// (a std::runtime_error) with the library's one-line message.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "mapgate/mapgate.h"

namespace mapgate {

class StatusError : public std::runtime_error {
 public:
  StatusError(mapgate_status status, const std::string& what) : std::runtime_error(what), status_(status) {}
  mapgate_status status() const { return status_; }

 private:
  mapgate_status status_;
};

inline void check_status(mapgate_status status) {
  if (status != MAPGATE_OK) throw StatusError(status, mapgate_last_error());
}

// What a batch did, example-major.
struct Classification {
  int n = 0, num_classes = 0, mask_width = 0;  // mask_width = layers x growth
  std::vector<float> logits;                  // (n, num_classes)
  std::vector<std::uint8_t> masks;            // (n, layers, growth): 1 = map computed
  std::vector<long long> macs;                // (n): multiply-accumulates, the paper's count (mapgate.h)

  // The arg-max class of example i (the first on ties).
  int label(int i) const {
    const float* row = logits.data() + static_cast<std::size_t>(i) * num_classes;
    int best = 0;
    for (int j = 1; j < num_classes; ++j)
      if (row[j] > row[best]) best = j;
    return best;
  }
};

class Classifier {
 public:
  // Reads and checks the weight file; throws StatusError (MAPGATE_BAD_FILE) naming it.
  explicit Classifier(const std::string& weight_path) {
    check_status(mapgate_load(weight_path.c_str(), &engine_));
    check_status(mapgate_get_info(engine_, &info_));
  }
  ~Classifier() { mapgate_free(engine_); }
  Classifier(Classifier&& other) noexcept : engine_(std::exchange(other.engine_, nullptr)), info_(other.info_) {}
  Classifier& operator=(Classifier&& other) noexcept {
    std::swap(engine_, other.engine_);
    std::swap(info_, other.info_);
    return *this;
  }
  Classifier(const Classifier&) = delete;
  Classifier& operator=(const Classifier&) = delete;

  const mapgate_info& info() const { return info_; }
  std::size_t image_bytes() const {
    return static_cast<std::size_t>(info_.in_channels) * info_.image_size * info_.image_size;
  }

  // tau in [0, 1]; negative: the weight file's.
  void set_threshold(double tau) {
    check_status(mapgate_set_threshold(engine_, tau));
    check_status(mapgate_get_info(engine_, &info_));
  }
  void set_threads(int threads) { check_status(mapgate_set_threads(engine_, threads)); }
  void set_mode(mapgate_mode mode) { check_status(mapgate_set_mode(engine_, mode)); }

  // n images of image_bytes() pixels each, planar, 0..255.
  Classification run_pixels(const std::uint8_t* pixels, int n) {
    Classification out = empty(n);
    check_status(mapgate_run_pixels(engine_, pixels, n, out.logits.data(), out.masks.data(), out.macs.data()));
    return out;
  }
  // n images already normalised, image_bytes() floats each.
  Classification run(const float* images, int n) {
    Classification out = empty(n);
    check_status(mapgate_run(engine_, images, n, out.logits.data(), out.masks.data(), out.macs.data()));
    return out;
  }

 private:
  Classification empty(int n) const {
    Classification out;
    const std::size_t count = n > 0 ? static_cast<std::size_t>(n) : 0;
    out.n = n;
    out.num_classes = info_.num_classes;
    out.mask_width = info_.layers * info_.growth;
    out.logits.resize(count * info_.num_classes);
    out.masks.resize(count * out.mask_width);
    out.macs.resize(count);
    return out;
  }

  mapgate_engine* engine_ = nullptr;
  mapgate_info info_{};
};

}  // namespace mapgate

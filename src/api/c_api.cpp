// The C interface (include/mapgate/mapgate.h) over Engine: argument checks, pixel
// normalisation as the data loader does it (src/data/loader.cpp's lookup table), and one
// guard per call that turns every C++ exception into a status and a message.
#include "mapgate/mapgate.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <new>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/pixel_lut.h"
#include "engine/engine.h"

#ifndef MAPGATE_VERSION
#define MAPGATE_VERSION "0.0.0"
#endif

struct mapgate_engine {
  explicit mapgate_engine(mapgate::Engine e)
      : engine(std::move(e)), pixel_lut(mapgate::pixel_lut(engine.input_mean(), engine.input_std())) {}
  mapgate::Engine engine;
  std::vector<float> pixel_lut;             // run_pixels: the file's normalisation, built once
  int threads = 1;
  std::vector<float> images;                // run_pixels: the normalised batch
  std::vector<float> logits;                // when the caller wants none
  std::vector<mapgate::EngineStats> stats;  // when the caller wants masks or MACs
};

namespace {

thread_local std::string last_error;

mapgate_status fail(mapgate_status status, const std::string& message) {
  last_error = message;
  return status;
}

// Runs body(), which returns a status; any exception becomes `on_error` (mapgate::Error,
// the library's own: bad input) or MAPGATE_FAILED (anything else), with its message.
template <class Body>
mapgate_status guarded(const char* function, mapgate_status on_error, Body&& body) noexcept {
  try {
    return body();
  } catch (const mapgate::Error& e) {
    return fail(on_error, e.what());
  } catch (const std::bad_alloc&) {
    return fail(MAPGATE_FAILED, std::string(function) + ": out of memory");
  } catch (const std::exception& e) {
    return fail(MAPGATE_FAILED, std::string(function) + ": " + e.what());
  } catch (...) {
    return fail(MAPGATE_FAILED, std::string(function) + ": unknown error");
  }
}

mapgate_status null_argument(const char* function, const char* name) {
  return fail(MAPGATE_INVALID_ARGUMENT, std::string(function) + ": " + name + " is NULL");
}

std::string number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

std::size_t image_values(const mapgate::DenseNetConfig& c) {
  return static_cast<std::size_t>(c.in_channels) * c.image_size * c.image_size;
}

// x = (pixel / 255 - mean[c]) / std[c] over n planar images, through the handle's table.
void normalise(const mapgate_engine& e, const unsigned char* pixels, int n, std::vector<float>& out) {
  const auto& c = e.engine.config();
  const std::size_t plane = static_cast<std::size_t>(c.image_size) * c.image_size;
  out.resize(static_cast<std::size_t>(n) * image_values(c));
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = e.pixel_lut[(i / plane) % c.in_channels * 256 + pixels[i]];
}

// The batch through Engine::forward_batch; copies masks and MACs out when asked for.
mapgate_status run_batch(mapgate_engine* e, const float* images, int n, float* logits, unsigned char* masks,
                         long long* macs) {
  const auto& c = e->engine.config();
  if (!logits) {
    e->logits.resize(static_cast<std::size_t>(n) * c.num_classes);
    logits = e->logits.data();
  }
  const bool want_stats = masks || macs;
  if (want_stats) e->stats.resize(n);
  e->engine.forward_batch(images, n, logits, want_stats ? e->stats.data() : nullptr, e->threads);
  const std::size_t width = static_cast<std::size_t>(e->engine.layers()) * c.growth;
  for (int i = 0; want_stats && i < n; ++i) {
    if (masks) std::copy(e->stats[i].masks.begin(), e->stats[i].masks.end(), masks + i * width);
    if (macs) macs[i] = e->stats[i].macs;
  }
  return MAPGATE_OK;
}

mapgate_status check_batch(const char* function, const mapgate_engine* e, const void* input, int n) {
  if (!e) return null_argument(function, "engine");
  if (n < 0) return fail(MAPGATE_INVALID_ARGUMENT, std::string(function) + ": n " + std::to_string(n) + " is negative");
  if (n > 0 && !input) return null_argument(function, "the input batch");
  return MAPGATE_OK;
}

}  // namespace

extern "C" {

const char* mapgate_version(void) { return MAPGATE_VERSION; }

const char* mapgate_last_error(void) { return last_error.c_str(); }

mapgate_status mapgate_load(const char* path, mapgate_engine** out) {
  if (!out) return null_argument("mapgate_load", "out");
  *out = nullptr;
  if (!path) return null_argument("mapgate_load", "path");
  return guarded("mapgate_load", MAPGATE_BAD_FILE, [&] {
    *out = new mapgate_engine(mapgate::Engine::load(path));
    return MAPGATE_OK;
  });
}

void mapgate_free(mapgate_engine* engine) { delete engine; }

mapgate_status mapgate_get_info(const mapgate_engine* engine, mapgate_info* out) {
  if (!engine) return null_argument("mapgate_get_info", "engine");
  if (!out) return null_argument("mapgate_get_info", "out");
  const auto& c = engine->engine.config();
  const double tau = engine->engine.options().threshold;
  *out = mapgate_info{c.in_channels, c.image_size, c.num_classes, engine->engine.layers(), c.growth,
                      c.gated ? 1 : 0, tau >= 0 ? tau : c.threshold};
  return MAPGATE_OK;
}

mapgate_status mapgate_set_threshold(mapgate_engine* engine, double tau) {
  if (!engine) return null_argument("mapgate_set_threshold", "engine");
  if (!(tau < 0 || mapgate::is_valid_threshold(tau)))  // NaN fails too
    return fail(MAPGATE_INVALID_ARGUMENT, "mapgate_set_threshold: tau " + number(tau) +
                                              " is outside [0, 1] (a negative tau restores the file's)");
  return guarded("mapgate_set_threshold", MAPGATE_INVALID_ARGUMENT, [&] {
    mapgate::EngineOptions options = engine->engine.options();
    options.threshold = tau < 0 ? -1 : tau;
    engine->engine.set_options(options);
    return MAPGATE_OK;
  });
}

mapgate_status mapgate_set_threads(mapgate_engine* engine, int threads) {
  if (!engine) return null_argument("mapgate_set_threads", "engine");
  if (threads < 1)
    return fail(MAPGATE_INVALID_ARGUMENT, "mapgate_set_threads: " + std::to_string(threads) + " threads; expected >= 1");
  engine->threads = threads;
  return MAPGATE_OK;
}

mapgate_status mapgate_set_mode(mapgate_engine* engine, int mode) {
  if (!engine) return null_argument("mapgate_set_mode", "engine");
  if (mode != MAPGATE_MODE_GATED && mode != MAPGATE_MODE_DENSE)
    return fail(MAPGATE_INVALID_ARGUMENT, "mapgate_set_mode: mode " + std::to_string(mode) +
                                              " is unknown; expected MAPGATE_MODE_GATED (0) or MAPGATE_MODE_DENSE (1)");
  return guarded("mapgate_set_mode", MAPGATE_INVALID_ARGUMENT, [&] {
    mapgate::EngineOptions options = engine->engine.options();
    // kGated falls back to kDense by itself for a file without gates.
    options.mode = mode == MAPGATE_MODE_DENSE ? mapgate::EngineMode::kDense : mapgate::EngineMode::kGated;
    engine->engine.set_options(options);
    return MAPGATE_OK;
  });
}

mapgate_status mapgate_run(mapgate_engine* engine, const float* images, int n, float* logits, unsigned char* masks,
                           long long* macs) {
  if (mapgate_status s = check_batch("mapgate_run", engine, images, n)) return s;
  return guarded("mapgate_run", MAPGATE_FAILED, [&] { return run_batch(engine, images, n, logits, masks, macs); });
}

mapgate_status mapgate_run_pixels(mapgate_engine* engine, const unsigned char* pixels, int n, float* logits,
                                  unsigned char* masks, long long* macs) {
  if (mapgate_status s = check_batch("mapgate_run_pixels", engine, pixels, n)) return s;
  return guarded("mapgate_run_pixels", MAPGATE_FAILED, [&] {
    normalise(*engine, pixels, n, engine->images);
    return run_batch(engine, engine->images.data(), n, logits, masks, macs);
  });
}

}  // extern "C"

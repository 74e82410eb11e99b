// DenseNetConfig checks and JSON round trip.
#include "model/config.h"

#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <string>

#include "common/error.h"

namespace mapgate {
namespace {

// Largest input side (ImageNet models take 224). With kMaxParams it keeps every MAC
// count (weights x plane <= 1e9 x 2^20) far inside int64.
constexpr int kMaxImageSize = 1024;

}  // namespace

int DenseNetConfig::transition_out(int channels) const {
  return static_cast<int>(std::floor(effective_compression() * channels));
}

std::string architecture_problem(const DenseNetConfig& c, SettingNames names) {
  const bool flags = names == SettingNames::kFlags;
  // A setting as the CLI names it (--p-clamp) or as a file does (p_clamp).
  auto name = [flags](const char* flag, const char* field) { return std::string(flags ? flag : field) + " "; };
  const int step = c.bc ? 6 : 3;
  if (c.depth < 4 + step || (c.depth - 4) % step != 0)
    return name("--depth", "depth") + std::to_string(c.depth) + ": expected " + std::to_string(step) +
           "n + 4 with n >= 1" + (!flags ? "" : c.bc ? " for --bc (e.g. 100)" : " (e.g. 40)");
  if (c.growth < 1 || c.growth > 1024) return name("--growth", "growth") + std::to_string(c.growth) + ": expected 1..1024";
  if (!(c.compression >= 0 && c.compression <= 1))  // written so that NaN fails too
    return name("--compression", "compression") + std::to_string(c.compression) + ": expected 0 < c <= 1 (0 = default)";
  if (!(c.dropout >= 0 && c.dropout < 1))
    return name("--dropout", "dropout") + std::to_string(c.dropout) + ": expected 0 <= p < 1";
  if (c.num_classes < 2) return name("classes", "num_classes") + std::to_string(c.num_classes) + ": expected >= 2";
  if (c.in_channels < 1)
    return name("input channels", "in_channels") + std::to_string(c.in_channels) + ": expected >= 1";
  if (c.image_size < 4 || c.image_size > kMaxImageSize)
    return name("image size", "image_size") + std::to_string(c.image_size) + ": expected 4.." +
           std::to_string(kMaxImageSize);
  // Size, in doubles so that no --depth or --growth can overflow an int: every transition
  // must keep a map, and the conv weights must fit in memory (DenseNet-BC-190 k=40 has
  // 25.6M parameters; kMaxParams is 40 times that). Without this a huge --depth runs
  // for hours or exhausts memory before anything checks it.
  const double k = c.growth, n = c.layers_per_block();
  double channels = c.stem_channels(), params = 9.0 * c.in_channels * channels;
  for (int block = 0; block < 3; ++block) {
    const double inputs = n * channels + k * n * (n - 1) / 2;  // summed over the block's layers
    params += c.bc ? 4 * k * inputs + n * 36 * k * k : 9 * k * inputs;
    channels += n * k;
    if (block == 2) break;
    const double out = std::floor(c.effective_compression() * channels);
    if (out < 1)
      return name("--compression", "compression") + std::to_string(c.effective_compression()) + ": transition " +
             std::to_string(block + 1) + " would keep none of its " +
             std::to_string(static_cast<long long>(channels)) + " maps";
    params += channels * out;
    channels = out;
  }
  params += channels * c.num_classes;
  if (params > kMaxParams) {
    char text[96];
    std::snprintf(text, sizeof text, "%.3g parameters, more than the %.3g this build allows", params, kMaxParams);
    return name("--depth", "depth") + std::to_string(c.depth) + " " + name("--growth", "growth") +
           std::to_string(c.growth) + ": " + text;
  }
  if (!is_valid_threshold(c.threshold))
    return name("--threshold", "threshold") + std::to_string(c.threshold) + ": expected 0 <= tau <= 1";
  if (!(c.p_clamp >= 0 && c.p_clamp < 0.5))
    return name("--p-clamp", "p_clamp") + std::to_string(c.p_clamp) + ": expected 0 <= eps < 0.5";
  if (c.core_maps < 0 || c.core_maps >= c.growth)
    return name("--core-maps", "core_maps") + std::to_string(c.core_maps) + ": expected 0 <= K < growth (" +
           std::to_string(c.growth) + "): at least one map of each layer is gated";
  if (c.core_maps > 0 && c.gate_per_layer)
    return name("--core-maps", "core_maps") + std::to_string(c.core_maps) +
           ": per-map gates only (a per-layer gate decides all of its layer's maps)";
  return "";
}

void validate(const DenseNetConfig& c) {
  const std::string problem = architecture_problem(c, SettingNames::kFlags);
  if (!problem.empty()) throw UsageError(problem);
}

nlohmann::json to_json(const DenseNetConfig& c) {
  nlohmann::json j = {{"depth", c.depth},           {"growth", c.growth},
                      {"bc", c.bc},                 {"compression", c.effective_compression()},
                      {"dropout", c.dropout},       {"num_classes", c.num_classes},
                      {"in_channels", c.in_channels}, {"image_size", c.image_size}};
  // Gate keys only for a gated model, so a dense run's files stay as they were.
  if (c.gated) {
    j["gates"] = true;
    j["threshold"] = c.threshold;
    j["p_clamp"] = c.p_clamp;
    j["gate_input"] = c.gate_standardize ? "standardized" : "raw";
    if (c.sampled_inference) j["inference"] = "sample";
    if (c.gate_per_layer) j["gate_unit"] = "layer";
    if (c.core_maps > 0) j["core_maps"] = c.core_maps;
  }
  return j;
}

namespace {

// An optional string key among `allowed`; absent: the first (what files before the key meant).
std::string choice(const nlohmann::json& j, const char* key, std::initializer_list<const char*> allowed,
                   const std::string& source) {
  if (!j.contains(key)) return *allowed.begin();
  const auto& v = j.at(key);
  for (const char* a : allowed)
    if (v.is_string() && v.get<std::string>() == a) return a;
  std::string list;
  for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
  throw Error(source + ": model config \"" + key + "\" is " + v.dump() + "; expected one of " + list);
}

}  // namespace

DenseNetConfig densenet_config_from_json(const nlohmann::json& j, const std::string& source) {
  DenseNetConfig c;
  auto get = [&](const char* key, auto& field) {
    if (!j.contains(key)) throw Error(source + ": model config lacks \"" + key + "\"");
    try {
      j.at(key).get_to(field);
    } catch (const nlohmann::json::exception&) {
      throw Error(source + ": model config \"" + key + "\" has the wrong type");
    }
  };
  get("depth", c.depth);
  get("growth", c.growth);
  get("bc", c.bc);
  get("compression", c.compression);
  get("dropout", c.dropout);
  get("num_classes", c.num_classes);
  get("in_channels", c.in_channels);
  get("image_size", c.image_size);
  if (j.contains("gates")) {  // absent: a dense model
    get("gates", c.gated);
    get("threshold", c.threshold);
    get("p_clamp", c.p_clamp);
    c.gate_standardize = choice(j, "gate_input", {"raw", "standardized"}, source) == "standardized";
    c.sampled_inference = choice(j, "inference", {"threshold", "sample"}, source) == "sample";
    c.gate_per_layer = choice(j, "gate_unit", {"map", "layer"}, source) == "layer";
    if (j.contains("core_maps")) get("core_maps", c.core_maps);  // absent: every map gated
  }
  const std::string problem = architecture_problem(c, SettingNames::kFields);
  if (!problem.empty()) throw Error(source + ": invalid model config (" + problem + ")");
  return c;
}

}  // namespace mapgate

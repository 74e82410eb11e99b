// Weight file writer, reader and checks; the byte layout is documented in
// docs/weight-format.md and must stay in step with it (bump kWeightFormatVersion).
#include "engine/weights.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <limits>
#include <random>
#include <set>
#include <sstream>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/json_limits.h"
#include "common/little_endian.h"
#include "common/regular_file.h"
#include "common/write_file.h"

namespace mapgate {
namespace {

std::string shape_str(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string prefix(const std::string& source) { return "weights " + quoted(source) + ": "; }

// A header value as shown in a message: its JSON text, cut after 60 characters.
std::string brief(const nlohmann::json& v) {
  const std::string text = v.dump();
  return text.size() <= 60 ? text : text.substr(0, 60) + "...";
}

// The architecture rules of config.cpp, naming the file and its fields.
void check_architecture(const DenseNetConfig& c, const std::string& source) {
  const std::string problem = architecture_problem(c, SettingNames::kFields);
  if (!problem.empty()) throw Error(prefix(source) + "invalid architecture: " + problem);
}

nlohmann::json header_json(const Weights& w, std::size_t tensor_count) {
  const auto& c = w.config;
  return {{"format", "mapgate-weights"},
          {"architecture",
           {{"depth", c.depth},
            {"growth", c.growth},
            {"bc", c.bc},
            {"compression", c.effective_compression()},
            {"num_classes", c.num_classes},
            {"in_channels", c.in_channels},
            {"image_size", c.image_size}}},
          {"gates", {{"gated", c.gated}, {"threshold", c.threshold}, {"p_clamp", c.p_clamp}}},
          {"normalization", {{"mean", w.mean}, {"std", w.std}}},
          {"batch_norm_eps", w.bn_eps},
          {"tensor_count", tensor_count}};
}

void parse_header(const std::string& text, Weights& w, std::size_t& tensor_count, const std::string& source) {
  // Depth-limited: the messages below dump() values, which recurses.
  const nlohmann::json j = parse_json_limited(text, prefix(source) + "header");
  auto field = [&](const nlohmann::json& obj, const std::string& path, const char* key, auto& out) {
    if (!obj.is_object() || !obj.contains(key))
      throw Error(prefix(source) + "header lacks \"" + path + key + "\"");
    // nlohmann turns a float or a bool into an integer with a plain cast, undefined for
    // 1e300 (UBSan under fuzz/fuzz_weights.cpp): integer fields take only integers that fit.
    using T = std::decay_t<decltype(out)>;
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      const nlohmann::json& v = obj.at(key);
      if (!v.is_number_integer())
        throw Error(prefix(source) + "header \"" + path + key + "\" is " + brief(v) + ", expected an integer");
      constexpr auto lo = static_cast<std::int64_t>(std::numeric_limits<T>::min());
      constexpr auto hi = static_cast<std::uint64_t>(std::numeric_limits<T>::max());
      const auto x = v.template get<std::int64_t>();  // as stored when not unsigned
      const bool fits = v.is_number_unsigned() ? v.template get<std::uint64_t>() <= hi
                                               : x >= lo && (x < 0 || static_cast<std::uint64_t>(x) <= hi);
      if (!fits) throw Error(prefix(source) + "header \"" + path + key + "\" is " + brief(v) + ", out of range");
    }
    try {
      obj.at(key).get_to(out);
    } catch (const nlohmann::json::exception&) {
      throw Error(prefix(source) + "header \"" + path + key + "\" has the wrong type");
    }
  };
  std::string format;
  field(j, "", "format", format);
  if (format != "mapgate-weights")
    throw Error(prefix(source) + "header format " + quoted(format) + ", expected \"mapgate-weights\"");
  nlohmann::json arch, gates, norm;
  field(j, "", "architecture", arch);
  field(j, "", "gates", gates);
  field(j, "", "normalization", norm);
  auto& c = w.config;
  field(arch, "architecture.", "depth", c.depth);
  field(arch, "architecture.", "growth", c.growth);
  field(arch, "architecture.", "bc", c.bc);
  field(arch, "architecture.", "compression", c.compression);
  field(arch, "architecture.", "num_classes", c.num_classes);
  field(arch, "architecture.", "in_channels", c.in_channels);
  field(arch, "architecture.", "image_size", c.image_size);
  field(gates, "gates.", "gated", c.gated);
  field(gates, "gates.", "threshold", c.threshold);
  field(gates, "gates.", "p_clamp", c.p_clamp);
  field(norm, "normalization.", "mean", w.mean);
  field(norm, "normalization.", "std", w.std);
  field(j, "", "batch_norm_eps", w.bn_eps);
  field(j, "", "tensor_count", tensor_count);
}

}  // namespace

std::vector<std::pair<std::string, std::vector<std::int64_t>>> expected_tensors(const DenseNetConfig& c) {
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> t;
  auto bn = [&](const std::string& name, std::int64_t ch) {
    for (const char* p : {"weight", "bias", "running_mean", "running_var"}) t.push_back({name + "." + p, {ch}});
  };
  const std::int64_t k = c.growth;
  std::int64_t ch = c.stem_channels();
  t.push_back({"stem.weight", {ch, c.in_channels, 3, 3}});
  std::vector<std::int64_t> gate_in;
  for (int b = 0; b < 3; ++b) {
    for (int i = 0; i < c.layers_per_block(); ++i) {
      const std::string name = "block" + std::to_string(b + 1) + "." + std::to_string(i);
      if (c.bc) {
        bn(name + ".norm1", ch);
        t.push_back({name + ".conv1.weight", {4 * k, ch, 1, 1}});
        bn(name + ".norm2", 4 * k);
        t.push_back({name + ".conv2.weight", {k, 4 * k, 3, 3}});
      } else {
        bn(name + ".norm", ch);
        t.push_back({name + ".conv.weight", {k, ch, 3, 3}});
      }
      gate_in.push_back(ch);
      ch += k;
    }
    if (b < 2) {
      const std::string name = "trans" + std::to_string(b + 1);
      const std::int64_t out = c.transition_out(static_cast<int>(ch));
      bn(name + ".norm", ch);
      t.push_back({name + ".conv.weight", {out, ch, 1, 1}});
      ch = out;
    }
  }
  bn("norm", ch);
  t.push_back({"classifier.weight", {c.num_classes, ch}});
  t.push_back({"classifier.bias", {c.num_classes}});
  if (c.gated) {
    for (std::size_t l = 0; l < gate_in.size(); ++l) {
      const std::string name = "gates." + std::to_string(l) + ".fc";
      t.push_back({name + ".weight", {k, gate_in[l]}});
      t.push_back({name + ".bias", {k}});
    }
  }
  return t;
}

void check_weights(const Weights& w, const std::string& source) {
  check_architecture(w.config, source);
  const std::size_t in = static_cast<std::size_t>(w.config.in_channels);
  if (w.mean.size() != in || w.std.size() != in)
    throw Error(prefix(source) + "normalization has " + std::to_string(w.mean.size()) + " means and " +
                std::to_string(w.std.size()) + " stds, expected " + std::to_string(in) + " (one per input channel)");
  for (std::size_t i = 0; i < in; ++i)
    if (!std::isfinite(w.mean[i]) || !std::isfinite(w.std[i]) || !(w.std[i] > 0))
      throw Error(prefix(source) + "normalization of channel " + std::to_string(i) + ": mean " +
                  std::to_string(w.mean[i]) + ", std " + std::to_string(w.std[i]) +
                  ", expected finite values and std > 0");
  if (!(w.bn_eps > 0)) throw Error(prefix(source) + "batch_norm_eps " + std::to_string(w.bn_eps) + ", expected > 0");
  const auto expected = expected_tensors(w.config);
  std::set<std::string> names;
  for (const auto& [name, shape] : expected) {
    names.insert(name);
    auto it = w.tensors.find(name);
    if (it == w.tensors.end())
      throw Error(prefix(source) + "tensor " + quoted(name) + " is missing (expected shape " + shape_str(shape) + ")");
    if (it->second.shape != shape)
      throw Error(prefix(source) + "tensor " + quoted(name) + " has shape " + shape_str(it->second.shape) +
                  ", this architecture expects " + shape_str(shape) + " (different depth, growth or bc?)");
    std::size_t n = 1;
    for (auto d : shape) n *= static_cast<std::size_t>(d);
    if (it->second.data.size() != n)
      throw Error(prefix(source) + "tensor " + quoted(name) + " holds " + std::to_string(it->second.data.size()) +
                  " values, its shape " + shape_str(shape) + " needs " + std::to_string(n));
  }
  for (const auto& [name, tensor] : w.tensors)
    if (!names.count(name))
      throw Error(prefix(source) + "unexpected tensor " + quoted(name) + " (not part of this architecture: " +
                  (w.config.gated ? "gated" : "ungated") + ", depth " + std::to_string(w.config.depth) + ")");
}

void write_weights(const std::string& path, const Weights& w) {
  check_weights(w, path);
  const auto expected = expected_tensors(w.config);
  std::string out(kWeightMagic, sizeof kWeightMagic);
  put_u32(out, kWeightFormatVersion);
  const std::string header = header_json(w, expected.size()).dump();
  put_u32(out, static_cast<std::uint32_t>(header.size()));
  out += header;
  for (const auto& [name, shape] : expected) {
    const auto& t = w.tensors.at(name);
    put_u32(out, static_cast<std::uint32_t>(name.size()));
    out += name;
    put_u32(out, static_cast<std::uint32_t>(shape.size()));
    for (auto d : shape) put_u32(out, static_cast<std::uint32_t>(d));
    put_elements(out, t.data);
  }
  write_file_atomic(path, out.data(), out.size());  // a failed write leaves any old file as it was
}

Weights read_weights(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 && errno == ENOENT)
    throw Error(prefix(path) + "cannot open: no such file (write one with `mapgate export`)");
  // A regular file only (a FIFO would block, /dev/zero never end), of bounded size.
  const SizeLimit limit{kMaxWeightFileBytes,
                        "this reader takes (1 GiB: ten times the float32 weights of the largest "
                        "CIFAR DenseNet, DenseNet-BC-190 with growth 40)"};
  return parse_weights(read_regular_file<std::string>(path, limit, "weights"), path);
}

Weights parse_weights(const std::string& bytes, const std::string& path) {
  ByteReader r(bytes, prefix(path));

  const std::string magic = r.bytes(sizeof kWeightMagic, "the magic");
  if (magic != std::string(kWeightMagic, sizeof kWeightMagic)) {
    std::string shown;
    for (char ch : magic) shown += (ch >= 32 && ch < 127) ? std::string(1, ch) : "\\x" + [&] {
      char buf[3];
      std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned char>(ch));
      return std::string(buf);
    }();
    throw Error(prefix(path) + "not a mapgate weight file (magic \"" + shown + "\", expected \"MAPGATE\\0\")");
  }
  const std::uint32_t version = r.u32("the version");
  if (version != kWeightFormatVersion)
    throw Error(prefix(path) + "this file is version " + std::to_string(version) + ", this build reads version " +
                std::to_string(kWeightFormatVersion) + (version > kWeightFormatVersion ? " (newer mapgate?)" : ""));
  const std::uint32_t header_size = r.u32("the header size");
  Weights w;
  std::size_t count = 0;
  parse_header(r.bytes(header_size, "the JSON header"), w, count, path);
  check_architecture(w.config, path);
  // Each of the 3n dense layers has at least 5 tensors (a BatchNorm's 4 and a conv), each
  // record at least 8 bytes (name size, rank). Checked before check_weights lists the
  // architecture's tensors: a header alone, with depth 2^31 - 1 and tensor_count 0, made
  // that list take all memory and minutes (a hang under fuzz/fuzz_weights.cpp).
  const std::uint64_t min_tensors = 3 * static_cast<std::uint64_t>(w.config.layers_per_block()) * 5;
  if (min_tensors * 8 > r.size())
    throw Error(prefix(path) + "truncated: depth " + std::to_string(w.config.depth) + " needs at least " +
                std::to_string(min_tensors) + " tensors, at least " + std::to_string(min_tensors * 8) +
                " bytes, the file has " + std::to_string(r.size()) + " bytes");
  for (std::size_t i = 0; i < count; ++i) {
    const std::string what = "tensor " + std::to_string(i);
    const std::uint32_t name_size = r.u32(what + "'s name size");
    if (name_size > 4096) throw Error(prefix(path) + what + " has a name of " + std::to_string(name_size) + " bytes");
    const std::string name = r.bytes(name_size, what + "'s name");
    const std::uint32_t ndim = r.u32("tensor " + quoted(name) + "'s rank");
    if (ndim > 8) throw Error(prefix(path) + "tensor " + quoted(name) + " has rank " + std::to_string(ndim) + ", expected <= 8");
    WeightTensor t;
    std::size_t n = 1;
    for (std::uint32_t d = 0; d < ndim; ++d) {
      t.shape.push_back(r.u32("tensor " + quoted(name) + "'s shape"));
      n *= static_cast<std::size_t>(t.shape.back());
      if (n > r.size()) r.truncated(std::to_string(n) + " x 4", "tensor " + quoted(name) + "'s data");
    }
    r.elements(t.data, n, "tensor " + quoted(name) + "'s data (" + shape_str(t.shape) + ")");
    if (!w.tensors.emplace(name, std::move(t)).second)
      throw Error(prefix(path) + "tensor " + quoted(name) + " appears twice");
  }
  if (r.pos() != r.size())
    throw Error(prefix(path) + std::to_string(r.size() - r.pos()) + " unexpected bytes after the last tensor (offset " +
                std::to_string(r.pos()) + ")");
  check_weights(w, path);
  return w;
}

Weights random_weights(const DenseNetConfig& config, std::uint64_t seed, double gate_bias) {
  Weights w;
  w.config = config;
  w.config.compression = config.effective_compression();
  w.mean.assign(config.in_channels, 0.5f);
  w.std.assign(config.in_channels, 0.25f);
  std::mt19937_64 rng(seed);
  // Portable draws (the standard distributions differ between libraries).
  auto uniform = [&] { return static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0); };
  auto normal = [&] {
    const double u1 = uniform() + 1e-300, u2 = uniform();
    return std::sqrt(-2 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  };
  for (const auto& [name, shape] : expected_tensors(w.config)) {
    WeightTensor t;
    t.shape = shape;
    std::size_t n = 1;
    for (auto d : shape) n *= static_cast<std::size_t>(d);
    t.data.resize(n);
    // A lambda may not capture a structured binding before C++20 (clang rejects it).
    auto ends_with = [&name = name](const std::string& s) {
      return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
    };
    const bool gate = name.rfind("gates.", 0) == 0;
    double fan = 1;  // fan-out of a conv (Kaiming, as densenet.cpp), fan-in of a linear
    if (shape.size() == 4) fan = static_cast<double>(shape[0]) * shape[2] * shape[3];
    if (shape.size() == 2) fan = static_cast<double>(shape[1]);
    for (auto& v : t.data) {
      double x;
      if (gate && ends_with(".bias")) x = gate_bias + 0.5 * normal();
      else if (gate) x = 4.0 * normal() / std::sqrt(fan);  // GAP inputs are small: spread the gates
      else if (shape.size() >= 2) x = normal() * std::sqrt(2.0 / fan);
      else if (ends_with(".running_var")) x = 0.5 + uniform();
      else if (ends_with(".running_mean")) x = 0.1 * normal();
      else if (ends_with("norm.weight") || ends_with("norm1.weight") || ends_with("norm2.weight")) x = 0.75 + 0.5 * uniform();
      else x = 0.1 * normal();  // BN bias, classifier bias
      v = static_cast<float>(x);
    }
    w.tensors.emplace(name, std::move(t));
  }
  return w;
}

}  // namespace mapgate

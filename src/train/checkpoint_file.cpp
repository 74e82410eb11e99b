// Checkpoint byte layout, version 2; docs/checkpoint-format.md says the same in prose and
// must stay in step with it.
#include "train/checkpoint_file.h"

#include <cstring>

#include "common/error.h"
#include "common/json_limits.h"
#include "common/little_endian.h"
#include "model/config.h"

namespace mapgate {
namespace {

constexpr std::size_t kMaxRank = 8;
constexpr std::size_t kMaxNameBytes = 4096;
constexpr std::int64_t kMaxDim = 0x7fffffff;

const char* type_name(StoredTensor::Type t) { return t == StoredTensor::Type::kFloat32 ? "float32" : "int64"; }

std::string brief(const nlohmann::json& v) {
  const std::string text = v.dump();
  return text.size() <= 60 ? text : text.substr(0, 60) + "...";
}

// The header entry of one tensor, checked: name, type and shape (its data comes later).
std::pair<std::string, StoredTensor> tensor_entry(const nlohmann::json& e, std::size_t index,
                                                  const std::string& who) {
  const std::string what = who + "header tensor " + std::to_string(index);
  if (!e.is_object() || !e.contains("name") || !e.contains("dtype") || !e.contains("shape"))
    throw Error(what + " is " + brief(e) + ", expected {\"name\", \"dtype\", \"shape\"}");
  const auto& name = e.at("name");
  if (!name.is_string() || name.get_ref<const std::string&>().empty() ||
      name.get_ref<const std::string&>().size() > kMaxNameBytes)
    throw Error(what + " has name " + brief(name) + ", expected a string of 1.." + std::to_string(kMaxNameBytes) + " bytes");
  const std::string label = who + "tensor " + quoted(name.get<std::string>());
  StoredTensor t;
  const auto& dtype = e.at("dtype");
  if (dtype == "float32") t.type = StoredTensor::Type::kFloat32;
  else if (dtype == "int64") t.type = StoredTensor::Type::kInt64;
  else throw Error(label + " has dtype " + brief(dtype) + ", expected \"float32\" or \"int64\"");
  const auto& shape = e.at("shape");
  if (!shape.is_array() || shape.size() > kMaxRank)
    throw Error(label + " has shape " + brief(shape) + ", expected an array of at most " + std::to_string(kMaxRank) + " sizes");
  for (const auto& d : shape) {
    if (!d.is_number_integer() || d.get<std::int64_t>() < 0 || d.get<std::int64_t>() > kMaxDim)
      throw Error(label + " has shape " + brief(shape) + ", expected sizes in 0.." + std::to_string(kMaxDim));
    t.shape.push_back(d.get<std::int64_t>());
  }
  return {name.get<std::string>(), std::move(t)};
}

}  // namespace

const SizeLimit& checkpoint_size_limit() {
  static const SizeLimit limit{static_cast<std::uint64_t>(4 * 4 * kMaxParams) + (std::uint64_t{1} << 30),
                               "a checkpoint may hold (4 copies of the largest model's parameters, 1 GiB to spare)"};
  return limit;
}

bool is_format1_checkpoint(const std::string& bytes) { return bytes.rfind("PK\x03\x04", 0) == 0; }

std::string encode_checkpoint(const CheckpointContents& contents) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [name, t] : contents.tensors) {
    std::size_t n = 1;
    for (auto d : t.shape) n *= static_cast<std::size_t>(d);
    if (n != t.numel())
      throw Error("checkpoint tensor " + quoted(name) + ": holds " + std::to_string(t.numel()) +
                  " values, its shape needs " + std::to_string(n));
    list.push_back({{"name", name}, {"dtype", type_name(t.type)}, {"shape", t.shape}});
  }
  const nlohmann::json header = {{"state", contents.state}, {"optimizers", contents.optimizers}, {"tensors", list}};
  const std::string text = header.dump();
  std::string out(kCheckpointMagic, sizeof kCheckpointMagic);
  put_u32(out, kCheckpointFormatVersion);
  put_u32(out, static_cast<std::uint32_t>(text.size()));
  out += text;
  for (const auto& [name, t] : contents.tensors) {
    if (t.type == StoredTensor::Type::kFloat32) put_elements(out, t.floats);
    else put_elements(out, t.ints);
  }
  return out;
}

CheckpointContents parse_checkpoint(const std::string& bytes, const std::string& path) {
  const std::string who = "checkpoint " + quoted(path) + ": ";
  ByteReader r(bytes, who);
  if (r.size() < sizeof kCheckpointMagic || std::memcmp(bytes.data(), kCheckpointMagic, sizeof kCheckpointMagic) != 0)
    throw Error(who + "not a mapgate checkpoint (no \"MGCHKPT\" magic at its start)");
  r.bytes(sizeof kCheckpointMagic, "the magic");
  const std::uint32_t version = r.u32("the version");
  if (version != kCheckpointFormatVersion)
    throw Error(who + "format version " + std::to_string(version) + ", this build reads version " +
                std::to_string(kCheckpointFormatVersion) + (version > kCheckpointFormatVersion ? " (newer mapgate?)" : ""));
  const std::uint32_t header_size = r.u32("the header size");
  const nlohmann::json header = parse_json_limited(r.bytes(header_size, "the JSON header"), who + "header");
  if (!header.is_object() || !header.contains("state") || !header.contains("optimizers") || !header.contains("tensors"))
    throw Error(who + "header lacks \"state\", \"optimizers\" or \"tensors\"");
  CheckpointContents c;
  c.state = header.at("state");
  if (!c.state.is_object()) throw Error(who + "header \"state\" is " + brief(c.state) + ", expected an object");
  const auto& optimizers = header.at("optimizers");
  if (!optimizers.is_object()) throw Error(who + "header \"optimizers\" is " + brief(optimizers) + ", expected an object");
  for (const auto& [key, kind] : optimizers.items()) {
    if (!kind.is_string()) throw Error(who + "header \"optimizers\" " + quoted(key) + " is " + brief(kind) + ", expected a string");
    c.optimizers[key] = kind.get<std::string>();
  }
  const auto& list = header.at("tensors");
  if (!list.is_array()) throw Error(who + "header \"tensors\" is " + brief(list) + ", expected an array");
  for (std::size_t i = 0; i < list.size(); ++i) {
    auto [name, t] = tensor_entry(list[i], i, who);
    const std::string what = "tensor " + quoted(name) + "'s data";
    std::size_t n = 1;
    for (auto d : t.shape) {
      // n stays <= the file's size, so the product never overflows.
      if (d != 0 && n > r.size() / static_cast<std::size_t>(d))
        r.truncated("more than " + std::to_string(r.size()), what);
      n *= static_cast<std::size_t>(d);
    }
    if (t.type == StoredTensor::Type::kFloat32) r.elements(t.floats, n, what);
    else r.elements(t.ints, n, what);
    if (!c.tensors.emplace(name, std::move(t)).second) throw Error(who + "tensor " + quoted(name) + " appears twice");
  }
  if (r.pos() != r.size())
    throw Error(who + std::to_string(r.size() - r.pos()) + " unexpected bytes after the last tensor (offset " +
                std::to_string(r.pos()) + ")");
  return c;
}

}  // namespace mapgate

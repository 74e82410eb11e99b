// IDX reader for MNIST and Fashion-MNIST. Header (big-endian uint32):
//   images: magic 0x00000803, N, rows, cols, then N*rows*cols pixel bytes (row-major)
//   labels: magic 0x00000801, N, then N label bytes
// Every field is checked and the file size must equal header + payload exactly.
#include "data/idx.h"

#include <cinttypes>
#include <cstdio>

#include "common/error.h"
#include "data/file_io.h"

namespace mapgate {
namespace {

constexpr std::uint32_t kImagesMagic = 0x00000803;  // unsigned byte, 3 dimensions
constexpr std::uint32_t kLabelsMagic = 0x00000801;  // unsigned byte, 1 dimension
constexpr std::uint32_t kSide = 28;
constexpr int kClasses = 10;
constexpr std::uint64_t kMaxRecords = 70000;  // MNIST's train and test sets in one file
constexpr std::size_t kImagesHeader = 16, kLabelsHeader = 8;

std::uint32_t be32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 |
         std::uint32_t{p[3]};
}

std::string hex32(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08" PRIx32, v);
  return buf;
}

std::string who(const std::string& path) { return "idx " + quoted(path); }

void check_header(const std::vector<std::uint8_t>& bytes, const std::string& path,
                  std::size_t header, std::uint32_t magic, const char* kind) {
  if (bytes.size() < header) {
    throw Error(who(path) + ": " + std::to_string(bytes.size()) + " bytes, too short for the " +
                std::to_string(header) + "-byte " + kind + " header");
  }
  std::uint32_t found = be32(bytes.data());
  if (found != magic) {
    std::string hint;
    if (bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b) hint = "; doubly gzipped?";
    throw Error(who(path) + ": magic " + hex32(found) + ", expected " + hex32(magic) + " (" +
                kind + ")" + hint);
  }
}

Dataset load_split(const std::string& name, const std::string& dir, const std::string& images,
                   const std::string& labels, const std::vector<std::string>& class_names) {
  std::string images_path, labels_path;
  try {
    images_path = find_plain_or_gz(dir, images);
    labels_path = find_plain_or_gz(dir, labels);
  } catch (const Error& e) {
    throw Error(name + ": " + e.what());
  }
  Dataset d;
  d.name = name;
  d.channels = 1;
  d.height = kSide;
  d.width = kSide;
  d.num_classes = kClasses;
  d.class_names = class_names;
  const std::size_t n =
      parse_idx_images(read_file_bytes(images_path, idx_images_file_limit()), images_path, d.images);
  d.labels = parse_idx_labels(read_file_bytes(labels_path, idx_labels_file_limit()), labels_path, kClasses);
  if (d.labels.size() != n) {
    throw Error(who(labels_path) + ": " + std::to_string(d.labels.size()) + " labels, but " +
                quoted(images_path) + " has " + std::to_string(n) + " images");
  }
  return d;
}

}  // namespace

std::size_t parse_idx_images(const std::vector<std::uint8_t>& bytes, const std::string& path,
                             std::vector<std::uint8_t>& pixels) {
  constexpr std::size_t kHeader = kImagesHeader;
  check_header(bytes, path, kHeader, kImagesMagic, "images");
  const std::uint32_t n = be32(bytes.data() + 4);
  const std::uint32_t rows = be32(bytes.data() + 8);
  const std::uint32_t cols = be32(bytes.data() + 12);
  if (n == 0) throw Error(who(path) + ": header says 0 images, expected at least 1");
  if (rows != kSide || cols != kSide) {
    throw Error(who(path) + ": images are " + std::to_string(rows) + "x" + std::to_string(cols) +
                ", expected 28x28");
  }
  // n < 2^32 and rows*cols = 784, so the product fits easily in 64 bits.
  const std::uint64_t expected = kHeader + std::uint64_t{n} * rows * cols;
  if (bytes.size() != expected) {
    throw Error(who(path) + ": " + std::to_string(bytes.size()) + " bytes, but the header (" +
                std::to_string(n) + " images of 28x28) needs exactly " + std::to_string(expected));
  }
  pixels.assign(bytes.begin() + kHeader, bytes.end());
  return n;
}

std::vector<std::uint8_t> parse_idx_labels(const std::vector<std::uint8_t>& bytes,
                                           const std::string& path, int num_classes) {
  constexpr std::size_t kHeader = kLabelsHeader;
  check_header(bytes, path, kHeader, kLabelsMagic, "labels");
  const std::uint32_t n = be32(bytes.data() + 4);
  if (n == 0) throw Error(who(path) + ": header says 0 labels, expected at least 1");
  const std::uint64_t expected = kHeader + std::uint64_t{n};
  if (bytes.size() != expected) {
    throw Error(who(path) + ": " + std::to_string(bytes.size()) + " bytes, but the header (" +
                std::to_string(n) + " labels) needs exactly " + std::to_string(expected));
  }
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint8_t label = bytes[kHeader + i];
    if (label >= num_classes) {
      throw Error(who(path) + ": record " + std::to_string(i) + " has label " +
                  std::to_string(label) + ", expected 0.." + std::to_string(num_classes - 1));
    }
  }
  return std::vector<std::uint8_t>(bytes.begin() + kHeader, bytes.end());
}

SizeLimit idx_images_file_limit() {
  return {kImagesHeader + kMaxRecords * kSide * kSide,
          "an IDX images file can hold (all " + std::to_string(kMaxRecords) + " images of 28x28)"};
}

SizeLimit idx_labels_file_limit() {
  return {kLabelsHeader + kMaxRecords,
          "an IDX labels file can hold (all " + std::to_string(kMaxRecords) + " labels)"};
}

const std::vector<std::string>& fashion_mnist_names() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress",
                                                 "Coat",        "Sandal",  "Shirt",    "Sneaker",
                                                 "Bag",         "Ankle boot"};
  return names;
}

DatasetSplits load_idx_dataset(const std::string& name, const std::string& dir, Splits which) {
  std::vector<std::string> names;
  if (name == "fashion-mnist") {
    names = fashion_mnist_names();
  } else if (name == "mnist") {
    for (int c = 0; c < kClasses; ++c) names.push_back(std::to_string(c));
  } else {
    throw UsageError("--dataset " + quoted(name) + ": not an IDX dataset; expected mnist or " +
                     "fashion-mnist");
  }
  DatasetSplits s;
  if (which == Splits::kTrainAndTest) {
    s.train = load_split(name, dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", names);
  }
  s.test = load_split(name, dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", names);
  return s;
}

}  // namespace mapgate

// CIFAR-10 / CIFAR-100 binary readers: every record's label is range-checked and every
// file's size must be a whole number of records. Layout per record (see cifar.h):
//   CIFAR-10:  [label][R 1024][G 1024][B 1024]            3073 bytes
//   CIFAR-100: [coarse][fine][R 1024][G 1024][B 1024]     3074 bytes
#include "data/cifar.h"

#include <cstring>

#include "common/error.h"
#include "data/file_io.h"

namespace mapgate {
namespace {

constexpr int kSide = 32;
constexpr int kChannels = 3;
constexpr std::size_t kPixels = kChannels * kSide * kSide;  // 3072
constexpr int kCifar100Coarse = 20;
constexpr std::size_t kMaxRecords = 60000;  // the whole dataset, train and test, in one file

struct Format {
  const char* subject;      // "cifar10": first word of every message
  std::size_t label_bytes;  // 1 (CIFAR-10) or 2 (coarse, fine)
  const char* layout;       // how a record is made up, for the size message
  const char* name;         // "CIFAR-10", for the size limit's message
};
const Format kCifar10{"cifar10", 1, "1 label + 3072 pixels", "CIFAR-10"};
const Format kCifar100{"cifar100", 2, "1 coarse label + 1 fine label + 3072 pixels", "CIFAR-100"};

SizeLimit file_limit(const Format& f) {
  return {kMaxRecords * (f.label_bytes + kPixels), std::string("a ") + f.name +
                                                       " file can hold (all " +
                                                       std::to_string(kMaxRecords) + " images)"};
}

void append_records(const Format& f, const std::vector<std::uint8_t>& bytes,
                    const std::string& path, Dataset& out) {
  const std::string who = std::string(f.subject) + " " + quoted(path);
  const std::size_t record = f.label_bytes + kPixels;
  if (bytes.empty()) throw Error(who + ": is empty (0 bytes, expected records of " +
                                 std::to_string(record) + " bytes)");
  if (bytes.size() % record != 0) {
    throw Error(who + ": " + std::to_string(bytes.size()) + " bytes is not a multiple of " +
                std::to_string(record) + " (" + f.layout + ")");
  }
  if (out.channels != kChannels || out.height != kSide || out.width != kSide) {
    throw Error(who + ": destination dataset is not 3x32x32");
  }
  const std::size_t n = bytes.size() / record;
  // Check every label before touching `out`, so a bad file leaves it unchanged.
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint8_t* r = bytes.data() + i * record;
    if (f.label_bytes == 2 && r[0] >= kCifar100Coarse) {
      throw Error(who + ": record " + std::to_string(i) + " has coarse label " +
                  std::to_string(r[0]) + ", expected 0.." + std::to_string(kCifar100Coarse - 1));
    }
    const std::uint8_t label = r[f.label_bytes - 1];
    if (label >= out.num_classes) {
      throw Error(who + ": record " + std::to_string(i) + " has " +
                  (f.label_bytes == 2 ? "fine label " : "label ") + std::to_string(label) +
                  ", expected 0.." + std::to_string(out.num_classes - 1));
    }
  }
  const std::size_t first = out.labels.size();
  out.labels.resize(first + n);
  out.images.resize((first + n) * kPixels);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint8_t* r = bytes.data() + i * record;
    out.labels[first + i] = r[f.label_bytes - 1];
    std::memcpy(out.images.data() + (first + i) * kPixels, r + f.label_bytes, kPixels);
  }
}

// Exactly `expected` non-empty lines (trailing spaces and CR stripped), or an error.
std::vector<std::string> read_names_file(const char* subject, const std::string& path,
                                         std::size_t expected) {
  std::vector<std::uint8_t> bytes = read_file_bytes(path, class_names_file_limit());
  std::vector<std::string> names;
  std::string line;
  auto flush = [&] {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.pop_back();
    }
    if (!line.empty()) names.push_back(line);
    line.clear();
  };
  for (std::uint8_t c : bytes) {
    if (c == '\n') flush();
    else line.push_back(static_cast<char>(c));
  }
  flush();
  if (names.size() != expected) {
    throw Error(std::string(subject) + " " + quoted(path) + ": " + std::to_string(names.size()) +
                " class names, expected " + std::to_string(expected) +
                " (one per line; delete the file to use the default names)");
  }
  return names;
}

std::string locate(const Format& f, const std::string& dir, const std::string& name) {
  try {
    return find_plain_or_gz(dir, name);
  } catch (const Error& e) {
    std::string hint = f.label_bytes == 1
                           ? "; `mapgate data fetch --dataset cifar10 --data DIR` downloads it"
                           : "";
    throw Error(std::string(f.subject) + ": " + e.what() + hint);
  }
}

Dataset load_split(const Format& f, const std::string& dir, const std::vector<std::string>& files,
                   int num_classes, const std::vector<std::string>& names,
                   const FileBytesHook& on_file) {
  Dataset d;
  d.name = f.subject;
  d.channels = kChannels;
  d.height = kSide;
  d.width = kSide;
  d.num_classes = num_classes;
  d.class_names = names;
  for (const std::string& name : files) {
    std::string path = locate(f, dir, name);
    std::vector<std::uint8_t> bytes = read_file_bytes(path, file_limit(f));
    if (on_file) on_file(name, path, bytes);
    // Batches are usually equal in size: reserve once instead of regrowing per file.
    if (d.images.empty()) d.images.reserve(bytes.size() * files.size());
    append_records(f, bytes, path, d);
  }
  return d;
}

std::string join(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

}  // namespace

const std::vector<std::string>& cifar10_train_files() {
  static const std::vector<std::string> files = {"data_batch_1.bin", "data_batch_2.bin",
                                                 "data_batch_3.bin", "data_batch_4.bin",
                                                 "data_batch_5.bin"};
  return files;
}

const std::string& cifar10_test_file() {
  static const std::string file = "test_batch.bin";
  return file;
}

const std::vector<std::string>& cifar10_standard_names() {
  static const std::vector<std::string> names = {"airplane", "automobile", "bird",  "cat",
                                                 "deer",     "dog",        "frog",  "horse",
                                                 "ship",     "truck"};
  return names;
}

SizeLimit cifar10_file_limit() { return file_limit(kCifar10); }
SizeLimit cifar100_file_limit() { return file_limit(kCifar100); }
SizeLimit class_names_file_limit() {
  return {std::uint64_t{1} << 20, "a class-names file may take (one short name per line)"};
}

void append_cifar10_records(const std::vector<std::uint8_t>& bytes, const std::string& path,
                            Dataset& out) {
  append_records(kCifar10, bytes, path, out);
}

void append_cifar100_records(const std::vector<std::uint8_t>& bytes, const std::string& path,
                             Dataset& out) {
  append_records(kCifar100, bytes, path, out);
}

DatasetSplits load_cifar10(const std::string& dir, const FileBytesHook& on_file, Splits which) {
  constexpr int kClasses = 10;
  const std::string meta = join(dir, "batches.meta.txt");
  std::vector<std::string> names = file_exists(meta)
                                        ? read_names_file(kCifar10.subject, meta, kClasses)
                                        : cifar10_standard_names();
  DatasetSplits s;
  if (which == Splits::kTrainAndTest) {
    s.train = load_split(kCifar10, dir, cifar10_train_files(), kClasses, names, on_file);
  }
  s.test = load_split(kCifar10, dir, {cifar10_test_file()}, kClasses, names, on_file);
  return s;
}

DatasetSplits load_cifar100(const std::string& dir, const FileBytesHook& on_file, Splits which) {
  constexpr int kClasses = 100;
  const std::string meta = join(dir, "fine_label_names.txt");
  std::vector<std::string> names;
  if (file_exists(meta)) {
    names = read_names_file(kCifar100.subject, meta, kClasses);
  } else {
    for (int c = 0; c < kClasses; ++c) names.push_back(std::to_string(c));
  }
  DatasetSplits s;
  if (which == Splits::kTrainAndTest) {
    s.train = load_split(kCifar100, dir, {"train.bin"}, kClasses, names, on_file);
  }
  s.test = load_split(kCifar100, dir, {"test.bin"}, kClasses, names, on_file);
  return s;
}

}  // namespace mapgate

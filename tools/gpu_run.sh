#!/usr/bin/env bash
# Runs on a lent GPU machine (the device tool; docs/scale.md, "On a lent GPU machine"),
# in three calls made one right after the other; tools/gpu_prepare.sh filled .gpu/ here:
#
#   tools/gpu_run.sh build   (carry .gpu/deps.tar.xz .gpu/cifar-a) keep the data part, build
#                            mapgate against the machine's PyTorch LibTorch, run the tests,
#                            probe the training speeds that size call 3, then the throughput
#                            of mapgate and of PyTorch from Python on the same GPU
#   tools/gpu_run.sh stash   (carry .gpu/cifar-b) keep the data part
#   tools/gpu_run.sh probe   (carry .gpu/cifar-b) the same, then the probe and throughput
#                            pairs again, where call 1 stopped before them
#   tools/gpu_run.sh train   (carry .gpu/cifar-c) keep the data part; then, side by side on
#                            the GPU: DenseNet-40 k=12 trained dense, then gated from it
#                            (issue 12), and the arms of COMPARE_CONFIG that the probe says
#                            end in time (issue 10)
#   tools/gpu_run.sh batches (carry .gpu/cifar-c) instead of train: DenseNet-40 dense at each of
#                            BATCH_SIZES, lr scaled with the batch, the same epochs each
#                            (issue 12 item 4: the largest batch that keeps the accuracy)
#
# The data parts, the build and the probe stay on the machine only while it is held: each
# call must come within its idle time (30 s) of the last. Results go to $OUT (the device
# tool's; gpu-out/ elsewhere): logs, dense.tgz and gated.tgz (DenseNet-40 run directories
# with their eval JSON, about 8 MB each), compare.tgz (the comparison's run directories).
# Settings (environment): CALL_SECONDS (540), the time call 3 may take in all: DenseNet-40's
# epochs and the number of comparison arms are chosen from the probe to end inside it, and
# each training is stopped at its share in any case (a stopped run keeps its last finished
# epoch); SHARE (0.3), how much slower a training runs for every other one beside it;
# ARMS (gated-p8 static-p4 gated-p4 gated-p16), the comparison's arms in order; PENALTY (4),
# COST_TARGET (0.333) of the DenseNet-40 gated run; for a rehearsal on a machine without a
# GPU: DEVICE (cuda), BENCH_STEPS (40; the probe 30), EXTRA_TRAIN_FLAGS (e.g. "--train-limit 512"),
# COMPARE_CONFIG (tools/compare-cifar10-mapgates-target-gpu.json).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/gpu-out}
STASH=/tmp/mapgate-cifar10
DEPS=/tmp/mapgate-deps
LIBS=/tmp/mapgate-libs
BUILD=${BUILD:-$ROOT/build-gpu}
PROBE=/tmp/mapgate-probe.txt  # call 1 measures, call 3 plans with it
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT"

say() { echo "[$(date -u +%H:%M:%S)] $*"; }
die() { echo "gpu_run.sh: $*" >&2; exit 1; }

# The carried CIFAR-10 part(s) into $STASH, which outlives the call while the machine is held.
stash() {
  mkdir -p "$STASH"
  for part in .gpu/cifar-*; do
    if [ -d "$part" ]; then cp "$part"/* "$STASH"/; fi
  done
  say "CIFAR-10 files kept so far: $(find "$STASH" -type f -printf '%f\n' | sort | tr '\n' ' ')"
}

# PyTorch's wheels export libstdc++'s std::filesystem symbols; preload the system's
# (docs/build.md, "PyTorch's pip wheels").
preload() { g++ -print-file-name=libstdc++.so.6; }

# The carried Debian libraries serve only where the machine has no headers of its own:
# the machine's come first (theirs are built for it, with their own dependencies).
prune_deps() {
  local inc=$DEPS/deps/root/usr/include lib=$DEPS/deps/root/usr/lib/x86_64-linux-gnu
  has() { [ -e "/usr/include/$1" ] || [ -e "/usr/include/x86_64-linux-gnu/$1" ]; }
  if has zlib.h; then rm -rf "$inc"/zlib.h "$inc"/zconf.h "$lib"/libz.*; fi
  if has png.h; then rm -rf "$inc"/png*.h "$inc"/libpng16 "$lib"/libpng*; fi
  if has openssl/ssl.h; then
    rm -rf "$inc"/openssl "$inc"/x86_64-linux-gnu/openssl "$lib"/libssl.* "$lib"/libcrypto.* "$lib"/engines-3 "$lib"/ossl-modules
  fi
  if has curl/curl.h; then rm -rf "$inc"/curl "$inc"/x86_64-linux-gnu/curl "$lib"/libcurl.*; fi
  say "carried libraries used: $(find "$lib" -maxdepth 1 -name 'lib*.so' -printf '%f\n' | sort | tr '\n' ' ')"
}

# Links, in $LIBS, to the carried libraries that a built program finds nowhere else: the
# programs run with LD_LIBRARY_PATH=$LIBS, so the machine's own libraries stay first.
link_missing_libraries() {
  local name
  mkdir -p "$LIBS"
  for name in $(ldd "$BUILD/mapgate" "$BUILD/mapgate_tests" "$BUILD/mapgate_train_bench" 2>/dev/null \
                | awk '/not found/ {print $1}' | sort -u); do
    if [ -e "$DEPS/deps/root/usr/lib/x86_64-linux-gnu/$name" ]; then
      ln -sf "$DEPS/deps/root/usr/lib/x86_64-linux-gnu/$name" "$LIBS/$name"
      say "from the carried libraries: $name"
    else
      say "missing and not carried: $name"
    fi
  done
}

build() {
  [ -f .gpu/deps.tar.xz ] || die ".gpu/deps.tar.xz was not carried (run tools/gpu_prepare.sh here, carry it)"
  rm -rf "$DEPS" "$LIBS" && mkdir -p "$DEPS" && tar -C "$DEPS" -xJf .gpu/deps.tar.xz
  prune_deps
  local torch_prefix abi
  torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
  abi=$(python3 -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
  say "PyTorch $(python3 -c 'import torch; c = torch.cuda; print(torch.__version__, c.get_device_name(0) if c.is_available() else "(no GPU)")'), C++11 ABI $abi"
  # GoogleTest from Debian's sources, with the wheel's ABI (Debian's libgtest.a has the new one).
  cmake -S "$DEPS/deps/googletest" -B /tmp/gtest-build -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_CXX_FLAGS="-D_GLIBCXX_USE_CXX11_ABI=$abi" -DCMAKE_INSTALL_PREFIX=/tmp/gtest > /dev/null
  cmake --build /tmp/gtest-build > /dev/null && cmake --install /tmp/gtest-build > /dev/null
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_PREFIX_PATH="$torch_prefix;$DEPS/deps/root/usr;/tmp/gtest" \
        -DCMAKE_CXX_FLAGS="-D_GLIBCXX_USE_CXX11_ABI=$abi" 2>&1 | tee "$OUT/cmake.log" | tail -n 5
  grep -E "NCCL|nccl" "$OUT/cmake.log" || say "cmake said nothing of NCCL (LibTorch without CUDA, or no Gloo)"
  # ProcessGroupNCCL has never been compiled against a CUDA LibTorch before: if the build
  # fails with it, build without it (several GPUs then use Gloo) and say so.
  if ! cmake --build "$BUILD" -j "$(nproc)" > "$OUT/compile.log" 2>&1; then
    grep -m 5 -E "error" "$OUT/compile.log" || true
    say "the build failed (compile.log); again with -DMAPGATE_NCCL=OFF"
    cmake -S . -B "$BUILD" -DMAPGATE_NCCL=OFF > /dev/null
    cmake --build "$BUILD" -j "$(nproc)" 2>&1 | tail -n 3
  fi
  link_missing_libraries
  # The engine's OpenMP runtime and the wheel's own may be two copies (docs/build.md).
  say "OpenMP runtimes the programs load: $(LD_LIBRARY_PATH="$LIBS" ldd "$BUILD/mapgate" | awk '/omp/ {print $1}' | tr '\n' ' ')"
  say "ctest (CUDA tests included; no data: the real-data tests skip)"
  # A failing test is reported, not fatal: the probe and the throughput pairs still run.
  env -u MAPGATE_DATA LD_LIBRARY_PATH="$LIBS" LD_PRELOAD="$(preload)" \
      ctest --test-dir "$BUILD" -j "$(nproc)" --timeout 300 --output-on-failure 2>&1 \
      | tee "$OUT/ctest.log" | tail -n 15 || say "ctest: some tests failed (ctest.log has their output)"
}

run() { LD_LIBRARY_PATH="$LIBS" LD_PRELOAD="$(preload)" "$@"; }  # a built program, as ctest ran them

# The flags every DenseNet-40 k=12 training here shares (issue 12), into the array DN40.
densenet40_flags() {
  # shellcheck disable=SC2206 # EXTRA_TRAIN_FLAGS: words on purpose
  DN40=(--dataset cifar10 --data "$STASH" --device "$DEVICE" --depth 40 --growth 12 --threads 3 --seed 1
        ${EXTRA_TRAIN_FLAGS:-})
}

bench() {
  local batch
  say "training throughput, DenseNet-40 k=12, batch 64 and 256: mapgate (bare LibTorch loop, mapgate train) and PyTorch from Python, alternating"
  for batch in 64 256; do
    run "$BUILD/mapgate_train_bench" --device "$DEVICE" --depth 40 --growth 12 --batch "$batch" --threads 8 \
        --steps "${BENCH_STEPS:-40}" --repeats 3 | tail -n 2
    python3 bench/pytorch_train.py --device "$DEVICE" --depth 40 --growth 12 --batch "$batch" --threads 8 \
        --steps "${BENCH_STEPS:-40}" --repeats 3 | tail -n 1
  done
  say "bf16 autocast on the GPU (the >= 2.4 autocast API): float32 against bf16, mapgate train"
  run "$BUILD/mapgate_train_bench" --device "$DEVICE" --depth 40 --growth 12 --batch 64 --threads 8 \
      --steps "${BENCH_STEPS:-40}" --repeats 3 --amp | tail -n 2
  say "operators per training step on the device, dense and gated (the probe's settings; docs/scale.md)"
  run "$BUILD/mapgate_step_ops" --device "$DEVICE" --depth 40 --growth 12 --batch 64 --top 15 \
    || say "mapgate_step_ops failed"
}

# Images/s alone on the GPU, dense and gated, of DenseNet-22 and DenseNet-40 (batch 64): call 3
# chooses its epochs from them. One line per depth: "depth D dense R gated R".
probe() {
  local depth
  say "probe: dense and gated training speed alone on the device, DenseNet-22 and -40 k=12, batch 64"
  rm -f "$PROBE"
  for depth in 22 40; do
    run "$BUILD/mapgate_train_bench" --device "$DEVICE" --depth "$depth" --growth 12 --batch 64 --threads 3 \
        --gated --steps "${BENCH_STEPS:-30}" --repeats 2 | tee /dev/stderr \
      | awk -v d="$depth" '/^median:/ {print "depth", d, "dense", $4, "gated", $8}' >> "$PROBE"
  done
  cat "$PROBE"
}

# rate DEPTH dense|gated: images/s from the probe (a slow guess without one).
rate() {
  [ -f "$PROBE" ] || { echo 500; return; }
  awk -v d="$1" -v k="$2" '$2 == d { print (k == "dense" ? $4 : $6); found = 1 } END { if (!found) print 500 }' \
      "$PROBE"
}

# epoch_seconds DEPTH dense|gated N: one CIFAR-10 epoch (50,000 images) of N trainings side
# by side on the GPU (each SHARE, 0.3, slower for every other one), plus its test pass.
epoch_seconds() {
  awk -v r="$(rate "$1" "$2")" -v n="${3:-1}" -v f="${SHARE:-0.3}" 'BEGIN { printf "%d", (1 + f * (n - 1)) * 50000 / r + 4 }'
}

# pack_run DIR: evaluate the run (when it has a checkpoint) and pack it into $OUT/NAME.tgz,
# one file each: the device tool returns files of at most 16 MiB.
pack_run() {
  if [ -f "$1/checkpoint.pt" ]; then
    run "$BUILD/mapgate" eval --model "$1" --data "$STASH" --threads 3 --json > "$1/eval.json" || true
  fi
  if [ -d "$1" ]; then
    tar -C "$(dirname "$1")" -czf "$OUT/$(basename "$1").tgz" "$(basename "$1")"
    say "$(basename "$1").tgz: $(du -h "$OUT/$(basename "$1").tgz" | cut -f1)"
  fi
}

# Issue 12: DenseNet-40 k=12 dense, then gated from it, inside BUDGET seconds (its first
# argument), 30 s of it for each evaluation.
densenet40() {
  local end=$(( $(date +%s) + $1 )) runs=/tmp/mapgate-gpu-runs dense_s gated_s epochs
  rm -rf "$runs" && mkdir -p "$runs"
  densenet40_flags
  dense_s=$(( ($1 - 60) * 2 / 3 ))
  epochs=$(( (dense_s - 20) / $(epoch_seconds 40 dense "$SIDE_BY_SIDE") )) && [ "$epochs" -ge 1 ] || epochs=1
  say "DenseNet-40 dense: $epochs epochs, at most $dense_s s"
  run timeout "$dense_s" "$BUILD/mapgate" train "${DN40[@]}" --out "$runs/dense" \
      --epochs "$epochs" --lr 0.1 --schedule cosine 2>&1 | grep "done in" || say "dense training stopped (timeout or error; exit ${PIPESTATUS[0]})"
  pack_run "$runs/dense"
  gated_s=$(( end - $(date +%s) - 30 ))
  epochs=$(( (gated_s - 20) / $(epoch_seconds 40 gated "$SIDE_BY_SIDE") ))
  if [ "$epochs" -lt 1 ]; then
    say "DenseNet-40 gated: one epoch takes about $(epoch_seconds 40 gated "$SIDE_BY_SIDE") s, $gated_s s left: not run"
    return 0
  fi
  say "DenseNet-40 gated from it: $epochs epochs, at most $gated_s s"
  run timeout "$gated_s" "$BUILD/mapgate" train "${DN40[@]}" --out "$runs/gated" --init "$runs/dense" \
      --epochs "$epochs" --lr 0.01 --schedule cosine --gates reinforce --penalty "${PENALTY:-4}" \
      --cost macs --cost-target "${COST_TARGET:-0.333}" --theta-masks greedy --bn-recal 20 2>&1 \
      | grep "done in" || say "gated training stopped (timeout or error; exit ${PIPESTATUS[0]})"
  pack_run "$runs/gated"
}

# compare_arm CONFIG ARM DEADLINE: tools/compare.py --only ARM, stopped at DEADLINE (epoch seconds).
compare_arm() {
  local left=$(( $3 - $(date +%s) ))
  [ "$left" -gt 30 ] || { say "$2: no time left"; return 1; }
  MAPGATE_DATA=$STASH run timeout "$left" python3 tools/compare.py "$1" --only "$2" --mapgate "$BUILD/mapgate" \
      > "/tmp/compare-$2.log" 2>&1 || { say "$2 stopped (timeout or error): $(tail -n 2 "/tmp/compare-$2.log" | tr '\n' ' ')"; return 1; }
  say "$2: $(grep -E 'accuracy [0-9.]+, ' "/tmp/compare-$2.log" | tail -n 1)"
}

# arm_seconds N: one arm of the comparison (4 dense and 9 gated epochs, its evaluations)
# with N trainings side by side.
arm_seconds() { echo $(( 4 * $(epoch_seconds 22 dense "$1") + 9 * $(epoch_seconds 22 gated "$1") + 40 )); }

# Issue 10: the first arms of ARMS that the probe says end inside BUDGET side by side with
# one another and DenseNet-40 (none where one would not end), into /tmp/compare-arms;
# SIDE_BY_SIDE becomes the number of trainings on the GPU.
comparison_plan() {
  local budget=$1 arm n=0
  : > /tmp/compare-arms
  for arm in ${ARMS:-gated-p8 static-p4 gated-p4 gated-p16}; do
    [ "$(arm_seconds $((n + 2)))" -le "$budget" ] || break
    echo "$arm" >> /tmp/compare-arms && n=$((n + 1))
  done
  SIDE_BY_SIDE=$((n + 1))
}

# Issue 10: the planned arms side by side, each stopped at the deadline in any case.
comparison() {
  local budget=$1 config=${COMPARE_CONFIG:-tools/compare-cifar10-mapgates-target-gpu.json} deadline out arm
  deadline=$(( $(date +%s) + budget - 30 ))
  if [ ! -s /tmp/compare-arms ]; then
    say "comparison: no arm ends in $budget s (one takes about $(arm_seconds 2) s beside DenseNet-40): none run"
    return 0
  fi
  say "comparison: $(tr '\n' ' ' < /tmp/compare-arms)side by side (about $(arm_seconds "$SIDE_BY_SIDE") s each), budget $budget s"
  while read -r arm; do compare_arm "$config" "$arm" "$deadline" & done < /tmp/compare-arms
  wait
  cat /tmp/compare-*.log > "$OUT/compare.log" 2>/dev/null || true
  out=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["out"])' "$config")
  if [ -d "$out" ]; then tar -czf "$OUT/compare.tgz" "$out"; fi
  say "comparison packed: $(du -h "$OUT/compare.tgz" 2>/dev/null | cut -f1)"
}

# Issue 12 item 4, the largest batch that keeps the recipe's accuracy: DenseNet-40 k=12
# dense at each of BATCH_SIZES (64 256 1024), one after another, alone on the GPU, the same
# epochs each (as many as fit BUDGET by the probe), learning rate 0.1 B / 64 (the linear
# scaling rule), cosine schedule; the test accuracy of each in a table.
batches() {
  local budget=$1 runs=/tmp/mapgate-gpu-batches sizes epochs per b lr
  # shellcheck disable=SC2206 # BATCH_SIZES: words on purpose
  sizes=(${BATCH_SIZES:-64 256 1024})
  densenet40_flags
  per=$(( budget / ${#sizes[@]} ))
  epochs=$(( (per - 20) / $(epoch_seconds 40 dense 1) )) && [ "$epochs" -ge 1 ] || epochs=1
  need_data
  rm -rf "$runs" && mkdir -p "$runs"
  say "batch sizes ${sizes[*]}: $epochs epochs each, at most $per s each"
  for b in "${sizes[@]}"; do
    lr=$(awk -v b="$b" 'BEGIN { printf "%g", 0.1 * b / 64 }')
    run timeout "$per" "$BUILD/mapgate" train "${DN40[@]}" --out "$runs/b$b" --batch "$b" --lr "$lr" \
        --schedule cosine --epochs "$epochs" 2>&1 | tee "$runs/b$b.log" | grep "done in" \
      || say "batch $b stopped (timeout or error; exit ${PIPESTATUS[0]}): $(tail -n 1 "$runs/b$b.log")"
  done
  echo "| batch | lr | epochs done | test accuracy | images/s |"
  echo "|---|---|---|---|---|"
  for b in "${sizes[@]}"; do
    python3 -c 'import json, sys
lines = open(sys.argv[1]).read().splitlines()
m = json.loads(lines[-1]) if lines else {}
acc, rate = m.get("test_accuracy"), m.get("images_per_s")
print("| %s | %g | %s | %s | %s |" % (sys.argv[2], 0.1 * int(sys.argv[2]) / 64, m.get("epoch", 0),
      "-" if acc is None else "%.4f" % acc, "-" if rate is None else "%.0f" % rate))' \
        "$runs/b$b/metrics.jsonl" "$b" 2>/dev/null || echo "| $b | | 0 | - | - |"
  done
  tar -C "$runs" -czf "$OUT/batches.tgz" .
}

# Every CIFAR-10 part kept: the three calls came while the machine was held.
need_data() {
  for f in data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch; do
    [ -f "$STASH/$f.bin.gz" ] || die "$STASH/$f.bin.gz missing: the three calls must follow each other while the machine is held"
  done
}

train() {
  local end left
  end=$(( $(date +%s) + ${CALL_SECONDS:-540} ))
  need_data
  [ -f "$PROBE" ] || say "no probe from call 1: epochs chosen from a slow guess"
  left=$(( end - $(date +%s) - 40 ))  # 40 s: the last evaluations and packing
  comparison_plan "$left"
  say "trainings side by side, $left s"
  densenet40 "$left" &
  comparison "$left" &
  wait
}

case "${1:-}" in
  build) stash; { build; probe; bench; } 2>&1 | tee "$OUT/build.log" ;;
  stash) stash ;;
  probe) stash; { probe; bench; } 2>&1 | tee "$OUT/probe.log" ;;
  train) stash; train 2>&1 | tee "$OUT/train.log" ;;
  batches) stash; batches $(( ${CALL_SECONDS:-540} - 40 )) 2>&1 | tee "$OUT/batches.log" ;;
  *) die "usage: tools/gpu_run.sh build|stash|probe|train|batches (docs/scale.md, \"On a lent GPU machine\")" ;;
esac

#!/usr/bin/env bash
# Runs on a lent GPU machine (the device tool; docs/scale.md, "On a lent GPU machine"),
# in three calls made one right after the other; tools/gpu_prepare.sh filled .gpu/ here:
#
#   tools/gpu_run.sh build   (carry .gpu/deps.tar.xz .gpu/cifar-a) keep the data part, build
#                            mapgate against the machine's PyTorch LibTorch, run the tests
#   tools/gpu_run.sh stash   (carry .gpu/cifar-b) keep the data part
#   tools/gpu_run.sh train   (carry .gpu/cifar-c) keep the data part; training throughput of
#                            mapgate and of PyTorch from Python, same GPU, alternating; then
#                            DenseNet-40 k=12 trained dense, then gated from it, on CIFAR-10
#
# The data parts and the build stay on the machine only while it is held: each call must
# come within its idle time (30 s) of the last. Results go to $OUT (the device tool's;
# gpu-out/ elsewhere): logs, and dense.tgz and gated.tgz, each a run directory with its
# eval JSON (about 8 MB each for DenseNet-40).
# Settings (environment): DENSE_EPOCHS (15), GATED_EPOCHS (5), DENSE_SECONDS (200) and
# GATED_SECONDS (100), the most each training may take (a run stopped there keeps its
# last finished epoch), PENALTY (4), COST_TARGET (0.333); for a rehearsal on a machine
# without a GPU: DEVICE (cuda), BENCH_STEPS (40), EXTRA_TRAIN_FLAGS (e.g. "--train-limit 512").
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/gpu-out}
STASH=/tmp/mapgate-cifar10
DEPS=/tmp/mapgate-deps
LIBS=/tmp/mapgate-libs
BUILD=${BUILD:-$ROOT/build-gpu}
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
        -DCMAKE_CXX_FLAGS="-D_GLIBCXX_USE_CXX11_ABI=$abi" 2>&1 | tail -n 5
  cmake --build "$BUILD" -j "$(nproc)" 2>&1 | tail -n 3
  link_missing_libraries
  say "ctest (CUDA tests included; no data: the real-data tests skip)"
  env -u MAPGATE_DATA LD_LIBRARY_PATH="$LIBS" LD_PRELOAD="$(preload)" \
      ctest --test-dir "$BUILD" -j "$(nproc)" --timeout 300 2>&1 | tee "$OUT/ctest.log" | tail -n 15
}

run() { LD_LIBRARY_PATH="$LIBS" LD_PRELOAD="$(preload)" "$@"; }  # a built program, as ctest ran them

bench() {
  say "training throughput, DenseNet-40 k=12, batch 64 and 256: mapgate (bare LibTorch loop, mapgate train) and PyTorch from Python, alternating"
  for round in 1 2; do
    for batch in 64 256; do
      run "$BUILD/mapgate_train_bench" --device "$DEVICE" --depth 40 --growth 12 --batch "$batch" --threads 8 \
          --steps "${BENCH_STEPS:-40}" --repeats 3 | tail -n 2
      python3 bench/pytorch_train.py --device "$DEVICE" --depth 40 --growth 12 --batch "$batch" --threads 8 \
          --steps "${BENCH_STEPS:-40}" --repeats 3 | tail -n 1
    done
    say "round $round done"
  done
  say "bf16 autocast on the GPU (the >= 2.4 autocast API): float32 against bf16, mapgate train"
  run "$BUILD/mapgate_train_bench" --device "$DEVICE" --depth 40 --growth 12 --batch 64 --threads 8 \
      --steps "${BENCH_STEPS:-40}" --repeats 3 --amp | tail -n 2
}

train() {
  local runs=/tmp/mapgate-gpu-runs common
  rm -rf "$runs" && mkdir -p "$runs"
  for f in data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch; do
    [ -f "$STASH/$f.bin.gz" ] || die "$STASH/$f.bin.gz missing: the three calls must follow each other while the machine is held"
  done
  # shellcheck disable=SC2206 # EXTRA_TRAIN_FLAGS: words on purpose
  common=(--dataset cifar10 --data "$STASH" --device "$DEVICE" --depth 40 --growth 12 --threads 8 --seed 1
          ${EXTRA_TRAIN_FLAGS:-})
  say "dense: ${DENSE_EPOCHS:-15} epochs, at most ${DENSE_SECONDS:-200} s"
  run timeout "${DENSE_SECONDS:-200}" "$BUILD/mapgate" train "${common[@]}" --out "$runs/dense" \
      --epochs "${DENSE_EPOCHS:-15}" --lr 0.1 --schedule cosine 2>&1 | grep "done in" || say "dense training stopped (timeout or error; exit ${PIPESTATUS[0]})"
  say "gated from it: ${GATED_EPOCHS:-5} epochs, at most ${GATED_SECONDS:-100} s"
  run timeout "${GATED_SECONDS:-100}" "$BUILD/mapgate" train "${common[@]}" --out "$runs/gated" --init "$runs/dense" \
      --epochs "${GATED_EPOCHS:-5}" --lr 0.01 --schedule cosine --gates reinforce --penalty "${PENALTY:-4}" \
      --cost macs --cost-target "${COST_TARGET:-0.333}" --theta-masks greedy --bn-recal 20 2>&1 \
      | grep "done in" || say "gated training stopped (timeout or error; exit ${PIPESTATUS[0]})"
  for r in dense gated; do  # one file each: the device tool returns files of at most 16 MiB
    [ -d "$runs/$r" ] || continue
    if [ -f "$runs/$r/checkpoint.pt" ]; then
      run "$BUILD/mapgate" eval --model "$runs/$r" --data "$STASH" --json > "$runs/$r/eval.json" || true
    fi
    tar -C "$runs" -czf "$OUT/$r.tgz" "$r"
    say "$r.tgz: $(du -h "$OUT/$r.tgz" | cut -f1)"
  done
}

case "${1:-}" in
  build) stash; build 2>&1 | tee "$OUT/build.log" ;;
  stash) stash ;;
  train) stash; { bench; train; } 2>&1 | tee "$OUT/train.log" ;;
  *) die "usage: tools/gpu_run.sh build|stash|train (docs/scale.md, \"On a lent GPU machine\")" ;;
esac

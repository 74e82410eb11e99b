#!/usr/bin/env bash
# Installs everything mapgate needs to build, test and run, from Debian 12's archive.
# Run as root. libopenblas0-pthread matters: without it LibTorch uses the reference BLAS.
# clang + libclang-rt-14-dev are only for the fuzz targets (libFuzzer; gcc has none),
# llvm-14 for llvm-symbolizer, so that sanitizer reports name functions and lines.
# libgloo-dev: c10d's Gloo backend, for training on several processes (docs/scale.md).
# python3-onnx for tools/export_onnx.py and its test; pkg-config for the installed-library test;
# python3-torch for bench/pytorch_train.py, the PyTorch reference loop (docs/perf.md), and its test.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  ca-certificates git cmake make g++ clang libclang-rt-14-dev llvm-14 \
  libtorch-dev libopenblas0-pthread libgloo-dev \
  libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev nlohmann-json3-dev \
  zlib1g-dev libpng-dev libssl-dev libcurl4-openssl-dev \
  dataset-fashion-mnist python3-matplotlib python3-onnx python3-torch pkg-config >/dev/null

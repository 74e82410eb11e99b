#!/usr/bin/env bash
# Installs everything mapgate needs to build, test and run, from Debian 12's archive.
# Run as root. libopenblas0-pthread matters: without it LibTorch uses the reference BLAS.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  ca-certificates git cmake make g++ \
  libtorch-dev libopenblas0-pthread \
  libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev nlohmann-json3-dev \
  zlib1g-dev libpng-dev libssl-dev libcurl4-openssl-dev \
  dataset-fashion-mnist python3-matplotlib >/dev/null

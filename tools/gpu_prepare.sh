#!/usr/bin/env bash
# Prepares .gpu/ (git-ignored) for tools/gpu_run.sh, which runs on a lent GPU machine
# that can fetch nothing (docs/scale.md, "On a lent GPU machine"). Run here, as root, from
# anywhere; needs Debian's archive and the CIFAR-10 files ($MAPGATE_DATA, default
# ../shared/data/cifar-10-batches-bin):
#   .gpu/deps.tar.xz  headers and libraries that machine lacks, from Debian 12 (CLI11,
#                 nlohmann-json, zlib, libpng, OpenSSL, curl, Google Benchmark) and
#                 GoogleTest's sources (built there with the wheel's C++ ABI); static
#                 libraries that mapgate does not link and the tests of GoogleTest are
#                 dropped, and the whole is compressed, to save carry space (about 3 MB)
#   .gpu/cifar-a  data_batch_1, data_batch_2
#   .gpu/cifar-b  data_batch_3, data_batch_4
#   .gpu/cifar-c  data_batch_5, test_batch, batches.meta.txt
# A call of the device tool carries at most 64 MiB with the repository (about 6 MB), so the
# data travels in three calls (two files of 28 MB each), the dependencies with the first.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${MAPGATE_DATA:-../shared/data/cifar-10-batches-bin}
for f in data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch; do
  [ -f "$data/$f.bin.gz" ] || { echo "gpu_prepare.sh: $data/$f.bin.gz not found (set MAPGATE_DATA)" >&2; exit 1; }
done
rm -rf .gpu && mkdir -p .gpu/deps/debs .gpu/deps/root .gpu/cifar-a .gpu/cifar-b .gpu/cifar-c
(cd .gpu/deps/debs && chmod 777 . && apt-get download -qq libcli11-dev nlohmann-json3-dev zlib1g-dev zlib1g libpng-dev \
  libpng16-16 libssl-dev libssl3 libcurl4-openssl-dev libcurl4 libbenchmark-dev libbenchmark1debian)
for deb in .gpu/deps/debs/*.deb; do dpkg-deb -x "$deb" .gpu/deps/root; done
rm -rf .gpu/deps/debs .gpu/deps/root/usr/share/doc .gpu/deps/root/usr/share/man
find .gpu/deps/root -name '*.a' ! -name 'libbenchmark*.a' -delete
cp -r /usr/src/googletest .gpu/deps/googletest
rm -rf .gpu/deps/googletest/googletest/test .gpu/deps/googletest/googlemock/test
tar -C .gpu -cJf .gpu/deps.tar.xz deps && rm -rf .gpu/deps
cp "$data"/data_batch_1.bin.gz "$data"/data_batch_2.bin.gz .gpu/cifar-a/
cp "$data"/data_batch_3.bin.gz "$data"/data_batch_4.bin.gz .gpu/cifar-b/
cp "$data"/data_batch_5.bin.gz "$data"/test_batch.bin.gz .gpu/cifar-c/
if [ -f "$data/batches.meta.txt" ]; then cp "$data/batches.meta.txt" .gpu/cifar-c/; fi
du -sh .gpu/deps.tar.xz .gpu/cifar-a .gpu/cifar-b .gpu/cifar-c

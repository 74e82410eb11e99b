#!/usr/bin/env python3
"""Training throughput of one process against several on this machine (docs/scale.md).

Usage:
    python3 tools/dp_throughput.py [--mapgate build/mapgate] [--depth 22 --growth 12]
                                   [--images 3200] [--pairs 3] [--cores 2] [--batch 64]

Alternates, --pairs times, (A) one process with --cores threads and (B) --cores
processes (--nproc) with one thread each, every run one epoch of `mapgate train` on the
first --images CIFAR-10 training images ($MAPGATE_DATA) at the same global batch (B's
per-process batch is --batch / --cores), and prints each run's training images/s (from
metrics.jsonl) and the median of B / A. Run directories go to a temporary directory.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile


def images_per_s(mapgate, run, args, nproc, threads, batch):
    cmd = [mapgate, "train", "--dataset", "cifar10", "--out", run, "--depth", str(args.depth),
           "--growth", str(args.growth), "--epochs", "1", "--batch", str(batch), "--threads", str(threads),
           "--train-limit", str(args.images), "--test-limit", "64", "--seed", "1"]
    if nproc > 1:
        cmd += ["--nproc", str(nproc)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(os.path.join(run, "metrics.jsonl")) as f:
        return json.loads(f.readline())["images_per_s"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mapgate", default="build/mapgate")
    p.add_argument("--depth", type=int, default=22)
    p.add_argument("--growth", type=int, default=12)
    p.add_argument("--images", type=int, default=3200)
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    args = p.parse_args()
    if args.batch % args.cores:
        sys.exit("--batch %d must be a multiple of --cores %d" % (args.batch, args.cores))
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.pairs):
            a = images_per_s(args.mapgate, os.path.join(tmp, "a%d" % i), args, 1, args.cores, args.batch)
            b = images_per_s(args.mapgate, os.path.join(tmp, "b%d" % i), args, args.cores, 1,
                             args.batch // args.cores)
            ratios.append(b / a)
            print("pair %d: 1 process x %d threads %.1f img/s, %d processes x 1 thread %.1f img/s, ratio %.3f"
                  % (i + 1, args.cores, a, args.cores, b, b / a), flush=True)
    print("median ratio (processes / threads): %.3f" % statistics.median(ratios))


if __name__ == "__main__":
    main()

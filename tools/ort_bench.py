#!/usr/bin/env python3
"""ONNX Runtime dense vs engine dense vs engine gated, alternating in one run.

Usage:
    /usr/bin/python3 tools/ort_bench.py --lib build/libmapgate.so --ort build/ort --data DIR \\
        --dense D22.bin --gated D22_GATED.bin [--random-depth 40 --random-growth 12] \\
        [--batches 1,64] [--threads 1,2] [--rounds 7] [--min-seconds 0.3] [--json OUT]

Networks: DenseNet-(random-depth) k=(random-growth) with random weights (ORT dense,
engine dense), and the shipped pair --dense / --gated, which must be the same
architecture (ORT dense and engine dense on --dense, engine gated on --gated). Inputs:
the first CIFAR-10 test images. For every network, batch and thread count, each round
times every method once (the order rotating from round to round), each for at least
--min-seconds of calls on the same batch; a figure is the median over rounds of the
time per image. Also the per-call overhead of each binding: ORT through Node on a
one-value Identity model, the engine through ctypes on an empty batch.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper

import export_onnx
import runtimes
import weightfile


class Method:
    """One way to run one network: `time(batch, reps)` -> seconds per call."""

    def __init__(self, name, time):
        self.name, self.time = name, time


def ort_method(ort, tmp, name, header, tensors, images, threads):
    path = os.path.join(tmp, f"{name}.onnx")
    onnx.save(export_onnx.build_model(header, tensors), path)
    session = ort.request(op="load", model=path, threads=threads)["session"]
    array_path = os.path.join(tmp, f"{name}.f32")
    images.tofile(array_path)
    data = ort.request(op="input", path=array_path, shape=list(images.shape))["input"]
    return Method("ORT dense", lambda batch, reps: ort.request(op="time", session=session, inputs={"image": data},
                                                               batch=batch, reps=reps)["seconds"])


def engine_method(engine, mode, threads, images):
    def time(batch, reps):
        engine.configure(mode, threads)
        return engine.time(images[:batch], reps)
    return Method("engine gated" if mode == runtimes.MODE_GATED else "engine dense", time)


def measure(methods, batch, rounds, min_seconds):
    """{method name: median seconds per image}."""
    reps = {}
    for m in methods:  # warm-up, and enough calls per measurement for min_seconds
        m.time(batch, 1)
        reps[m.name] = max(1, int(np.ceil(min_seconds / max(min(m.time(batch, 2)), 1e-6))))
    per_image = {m.name: [] for m in methods}
    for r in range(rounds):
        for m in methods[r % len(methods):] + methods[:r % len(methods)]:
            per_image[m.name].append(sum(m.time(batch, reps[m.name])) / reps[m.name] / batch)
    return {name: statistics.median(v) for name, v in per_image.items()}


def overheads(ort, tmp, lib, weights):
    """Median seconds per call: ORT (Node) on Identity of one value, ctypes on n = 0."""
    graph = helper.make_graph([helper.make_node("Identity", ["image"], ["logits"])], "identity",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1])])
    path = os.path.join(tmp, "identity.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    session = ort.request(op="load", model=path, threads=1)["session"]
    np.zeros((1, 1), np.float32).tofile(os.path.join(tmp, "one.f32"))
    one = ort.request(op="input", path=os.path.join(tmp, "one.f32"), shape=[1, 1])["input"]
    ort_call = ort.request(op="time", session=session, inputs={"image": one}, batch=1, reps=2000)["seconds"][100:]
    engine = runtimes.Engine(lib, weights)
    empty = np.zeros((0, engine.info.in_channels, engine.info.image_size, engine.info.image_size), np.float32)
    return statistics.median(ort_call), statistics.median(engine.time(empty, 2000)[100:])


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lib", required=True, help="libmapgate.so")
    parser.add_argument("--ort", required=True, help="directory holding node_modules/onnxruntime-node")
    parser.add_argument("--data", required=True, help="CIFAR-10 directory (test_batch.bin[.gz])")
    parser.add_argument("--dense", required=True, help="the shipped dense weight file")
    parser.add_argument("--gated", required=True, help="the shipped gated weight file, same architecture")
    parser.add_argument("--random-depth", type=int, default=40, help="random-weight network depth (default 40)")
    parser.add_argument("--random-growth", type=int, default=12, help="its growth k (default 12)")
    parser.add_argument("--batches", default="1,64", help="batch sizes (default 1,64)")
    parser.add_argument("--threads", default="1,2", help="thread counts of both runtimes (default 1,2)")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (default 7)")
    parser.add_argument("--min-seconds", type=float, default=0.3, help="per measurement (default 0.3)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",")]
    thread_counts = [int(t) for t in args.threads.split(",")]
    dense_header, dense_tensors = weightfile.read_weights(args.dense)
    gated_header = weightfile.read_weights(args.gated)[0]
    arch = lambda h: {k: h["architecture"][k] for k in ("depth", "growth", "bc", "image_size", "in_channels")}
    if arch(dense_header) != arch(gated_header) or not gated_header["gates"]["gated"]:
        print(f"ort_bench: --gated {args.gated} is not a gated {arch(dense_header)}", file=sys.stderr)
        return 2
    labels, pixels = runtimes.cifar10_test(args.data, max(batches))
    norm = dense_header["normalization"]
    images = runtimes.normalise(pixels, norm["mean"], norm["std"])
    ort = runtimes.OrtServer(args.ort)
    results = {"machine": platform.node(), "load_before": os.getloadavg(), "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        random_header = weightfile.dense_header(args.random_depth, args.random_growth)
        random_tensors = weightfile.random_tensors(random_header, np.random.default_rng(1))
        random_path = os.path.join(tmp, "random.bin")
        weightfile.write_weights(random_path, random_header, random_tensors)
        results["overhead_s"] = dict(zip(("ort_node", "engine_ctypes"), overheads(ort, tmp, args.lib, args.dense)))
        networks = [(f"DenseNet-{args.random_depth} k={args.random_growth} (random)", random_header, random_tensors,
                     random_path, None),
                    (f"DenseNet-{dense_header['architecture']['depth']} k={dense_header['architecture']['growth']}",
                     dense_header, dense_tensors, args.dense, args.gated)]
        for name, header, tensors, path, gated in networks:
            dense_engine = runtimes.Engine(args.lib, path)
            dense_engine.configure(runtimes.MODE_DENSE, 1)
            gated_engine = runtimes.Engine(args.lib, gated) if gated else None
            for threads in thread_counts:
                methods = [ort_method(ort, tmp, f"{name}-{threads}", header, tensors, images, threads),
                           engine_method(dense_engine, runtimes.MODE_DENSE, threads, images)]
                if gated_engine:
                    methods.append(engine_method(gated_engine, runtimes.MODE_GATED, threads, images))
                for batch in batches:
                    row = {"network": name, "batch": batch, "threads": threads,
                           "s_per_image": measure(methods, batch, args.rounds, args.min_seconds)}
                    dense_engine.configure(runtimes.MODE_DENSE, 1)
                    row["dense_macs"] = float(dense_engine.run(images[:batch])[2].mean())
                    if gated_engine:
                        gated_engine.configure(runtimes.MODE_GATED, 1)
                        row["gated_macs"] = float(gated_engine.run(images[:batch])[2].mean())
                    results["rows"].append(row)
                    print_row(row)
    ort.close()
    results["load_after"] = os.getloadavg()
    print(f"per-call overhead: ORT via Node {results['overhead_s']['ort_node'] * 1e6:.1f} us, "
          f"engine via ctypes {results['overhead_s']['engine_ctypes'] * 1e6:.1f} us; load average "
          f"{results['load_before'][0]:.2f} before, {results['load_after'][0]:.2f} after")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


def print_row(row):
    t = row["s_per_image"]
    ort, dense, gated = t["ORT dense"], t["engine dense"], t.get("engine gated")
    line = (f"| {row['network']} | {row['batch']} | {row['threads']} | {ort * 1e3:.2f} | {dense * 1e3:.2f} | "
            f"{ort / dense:.2f} |")
    if gated is not None:
        ratio = row["dense_macs"] / row["gated_macs"]
        line += f" {gated * 1e3:.2f} | {ort / gated:.2f} | {ratio:.2f} | {ort / gated / ratio:.2f} |"
    else:
        line += " | | | |"
    print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

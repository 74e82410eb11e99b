#!/usr/bin/env python3
"""ONNX Runtime's logits against the engine's dense logits on CIFAR-10 test images.

Usage:
    /usr/bin/python3 tools/ort_check.py --lib build/libmapgate.so --ort build/ort \\
        --data DIR [--limit 0] [--tolerance 1e-4] WEIGHTS.bin...
    /usr/bin/python3 tools/ort_check.py --lib build/libmapgate.so --ort build/ort --random

For each weight file (mapgate export): its dense network as ONNX (tools/export_onnx.py),
run by ONNX Runtime (bench/ort_server.js; `npm install --ignore-scripts onnxruntime-node`
in the --ort directory) and by the engine in dense mode (libmapgate), on the same
normalised float32 images. For a gated file, also the engine's gated pass against ORT
on the graph with a "masks" input (export_onnx.py --masks), fed the masks the engine
chose. Prints the largest absolute logit difference, the arg-max agreement and both
accuracies; exits 1 if a checked difference exceeds --tolerance. The dense pass of a
gated file whose dense logits are not all finite is printed, not checked: its BatchNorm
statistics were collected under masks, and with every map on the activations overflow
(the same way in both runtimes).
--random: no data or weight files needed; random gated DenseNet-16 and DenseNet-BC-22
weights (tools/weightfile.py) on random 32x32 images; labels, and so accuracies, are
meaningless there (ctest engine.ort_anchor, when ONNX Runtime is installed).
"""
import argparse
import os
import sys
import tempfile

import numpy as np
import onnx

import export_onnx
import runtimes
import weightfile


def ort_logits(ort, tmp, model, arrays, threads):
    """ORT's logits of `model` (ModelProto) on {input name: float32 array}."""
    path = os.path.join(tmp, "model.onnx")
    onnx.save(model, path)
    session = ort.request(op="load", model=path, threads=threads)["session"]
    ids = {}
    for name, array in arrays.items():
        array_path = os.path.join(tmp, name + ".f32")
        np.ascontiguousarray(array, np.float32).tofile(array_path)
        ids[name] = ort.request(op="input", path=array_path, shape=list(array.shape))["input"]
    out = os.path.join(tmp, "logits.f32")
    rows = ort.request(op="logits", session=session, inputs=ids, out=out)["rows"]
    return np.fromfile(out, np.float32).reshape(rows, -1)


def check_one(weights, args, labels, pixels, ort, tmp):
    header, tensors = weightfile.read_weights(weights)
    norm = header["normalization"]
    images = runtimes.normalise(pixels, norm["mean"], norm["std"])
    engine = runtimes.Engine(args.lib, weights)
    gated = header["gates"]["gated"]

    engine.configure(runtimes.MODE_DENSE, threads=args.threads)
    mine = engine.run(images)[0]
    theirs = ort_logits(ort, tmp, export_onnx.build_model(header, tensors), {"image": images}, args.threads)
    checked = not gated or np.isfinite(mine).all()
    ok = compare(f"{weights} dense{'' if checked else ' (overflows: printed, not checked)'}", mine, theirs, labels,
                 args.tolerance) or not checked
    if gated:
        engine.configure(runtimes.MODE_GATED, threads=args.threads)
        mine, masks, macs = engine.run(images)
        model = export_onnx.build_model(header, tensors, masks=True)
        theirs = ort_logits(ort, tmp, model, {"image": images, "masks": masks.astype(np.float32)}, args.threads)
        ok &= compare(f"{weights} gated (ORT under the engine's masks, {macs.mean() / 1e6:.1f} M MACs/image)",
                      mine, theirs, labels, args.tolerance)
    return ok


def compare(what, mine, theirs, labels, tolerance):
    """Prints the comparison; True if every logit is within tolerance, or non-finite the
    same way in both (a network that overflows, e.g. the dense pass of a gated model
    whose BatchNorm statistics were collected under masks)."""
    finite = np.isfinite(mine) & np.isfinite(theirs)
    same_nonfinite = np.array_equal(np.isnan(mine), np.isnan(theirs)) and np.array_equal(
        mine[np.isinf(mine)], theirs[np.isinf(mine)])
    with np.errstate(invalid="ignore"):
        diff = np.where(finite, np.abs(mine.astype(np.float64) - theirs), 0)
    worst = np.unravel_index(np.argmax(diff), diff.shape)
    agree = np.mean(mine.argmax(1) == theirs.argmax(1))
    nonfinite = f"; {np.sum(~finite)} logits non-finite, {'the same in both' if same_nonfinite else 'DIFFERENTLY'}" \
        if not finite.all() else ""
    print(f"{what}: {len(labels)} images, max |engine - ORT| = {diff.max():.3g} (image {worst[0]}, "
          f"class {worst[1]}), mean {diff[finite].mean() if finite.any() else 0:.3g}{nonfinite}; arg-max agrees on "
          f"{agree:.2%}; accuracy engine {np.mean(mine.argmax(1) == labels):.4f}, "
          f"ORT {np.mean(theirs.argmax(1) == labels):.4f}")
    return diff.max() <= tolerance and same_nonfinite


def random_file(tmp, depth, bc, rng):
    header = weightfile.dense_header(depth, growth=12, bc=bc, gated=True)
    path = os.path.join(tmp, f"random-{depth}{'-bc' if bc else ''}.bin")
    weightfile.write_weights(path, header, weightfile.random_tensors(header, rng))
    return path


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("weights", nargs="*", help="mapgate weight files (mapgate export)")
    parser.add_argument("--lib", required=True, help="libmapgate.so (the build's or an installed one)")
    parser.add_argument("--ort", required=True, help="directory holding node_modules/onnxruntime-node")
    parser.add_argument("--data", help="CIFAR-10 directory (test_batch.bin[.gz])")
    parser.add_argument("--random", action="store_true", help="random weights and images instead")
    parser.add_argument("--limit", type=int, default=0, help="the first N test images (default 0: all)")
    parser.add_argument("--threads", type=int, default=1, help="threads of both runtimes (default 1)")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest logit difference (default 1e-4)")
    args = parser.parse_args(argv)
    if args.random == bool(args.data or args.weights):
        parser.error("give --data and weight files, or --random")
    ort = runtimes.OrtServer(args.ort)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        if args.random:
            rng = np.random.default_rng(7)
            labels, pixels = rng.integers(0, 10, 64), rng.integers(0, 256, (64, 3, 32, 32), dtype=np.uint8)
            args.weights = [random_file(tmp, 16, bc=False, rng=rng), random_file(tmp, 22, bc=True, rng=rng)]
        else:
            labels, pixels = runtimes.cifar10_test(args.data, args.limit)
        for weights in args.weights:
            ok &= check_one(weights, args, labels, pixels, ort, tmp)
    ort.close()
    if not ok:
        print(f"ort_check: a logit differs by more than --tolerance {args.tolerance}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

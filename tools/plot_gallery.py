#!/usr/bin/env python3
"""A gallery of CIFAR-10 test images ordered by the MACs a gated model spent on each, with
its label and the model's prediction.

Usage:
    python3 tools/plot_gallery.py EVAL.json [--data DIR] -o gallery.png [--rows 4 --cols 8]

EVAL.json is an evaluation with per_example labels, predictions and MACs (one entry per test
image, in the data set's order; docs/pictures.md); DIR is CIFAR-10's binary version (the
directory with test_batch.bin or test_batch.bin.gz, or that file; default: where mapgate
keeps it, $MAPGATE_DATA or ~/.cache/mapgate/cifar10). rows x cols images are
picked at evenly spaced ranks of MACs, from the cheapest image (top left) to the costliest
(bottom right), so both ends are shown. Each is titled with its MACs in millions and its
label, in green when the prediction is right, else red with "label -> prediction".
Writes a (150 * cols) x (170 * rows + 70) PNG: 1200 x 750 by default.
"""
import argparse
import sys

import numpy as np

from cifar_images import CLASSES, default_data_dir, read_test_batch
from mapgate_files import PlotError, load_evaluation, per_example, run_name
from plot_common import figure, main as plot_main, save


def size(rows, cols):
    """The PNG's (width, height) in pixels."""
    return 150 * cols, 170 * rows + 70


def pick(macs, count):
    """Indices of `count` images at evenly spaced ranks of macs, cheapest first (all if fewer)."""
    order = np.argsort(np.asarray(macs, dtype=float), kind="stable")
    ranks = np.unique(np.round(np.linspace(0, len(order) - 1, min(count, len(order)))).astype(int))
    return [int(order[r]) for r in ranks]


def _check_labels(chosen, columns, labels, where, data):
    if len(columns["label"]) > len(labels):
        raise PlotError("%s: %d per-example entries but %s has only %d test images"
                        % (where, len(columns["label"]), data, len(labels)))
    for i in chosen:
        if columns["label"][i] != labels[i]:
            raise PlotError("%s: test image %d has label %d there but %d in %s (another data set or order?)"
                            % (where, i, columns["label"][i], labels[i], data))


def _draw_cell(ax, image, macs, label, prediction, names):
    ax.imshow(image, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    right = label == prediction
    text = names[label] if right else "%s -> %s" % (names[label], names[prediction])
    ax.set_title("%.1fM\n%s" % (macs / 1e6, text), fontsize=8, color="darkgreen" if right else "red")


def plot(path, data, output, rows=4, cols=8, arm=None, title=None):
    evaluation = load_evaluation(path, arm)
    where = path + (" arm " + arm if arm else "")
    columns = per_example(evaluation, where, ("label", "prediction", "macs"))
    labels, images = read_test_batch(data)
    chosen = pick(columns["macs"], rows * cols)
    _check_labels(chosen, columns, labels, where, data)
    names = [c.get("class", str(i)) for i, c in enumerate(evaluation.get("per_class") or [])] or CLASSES
    fig, axes = figure(*size(rows, cols), nrows=rows, ncols=cols, squeeze=False)
    for cell, ax in enumerate(axes.flat):
        if cell < len(chosen):
            i = chosen[cell]
            _draw_cell(ax, images[i], columns["macs"][i], columns["label"][i], columns["prediction"][i], names)
        else:
            ax.axis("off")
    accuracy = np.mean(np.array(columns["label"]) == np.array(columns["prediction"]))
    fig.suptitle(title or "%s: %d of %d test images by MACs used, fewest first (accuracy %.3f; red: wrong)"
                 % (arm or run_name(path), len(chosen), len(columns["macs"]), accuracy), fontsize=11)
    fig.tight_layout()
    save(fig, output)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="plot_gallery.py",
                                     description="CIFAR-10 test images ordered by the MACs a gated model used.",
                                     epilog="example: python3 tools/plot_gallery.py eval.json --data DIR "
                                            "-o gallery.png (eval.json's per_example: docs/pictures.md)")
    parser.add_argument("input", help="evaluation JSON with per_example label, prediction, macs "
                                      "(docs/pictures.md), or compare.py results.json with --arm")
    parser.add_argument("--data", default=default_data_dir(),
                        help="CIFAR-10 binary directory, or its test_batch.bin[.gz] (%(default)s)")
    parser.add_argument("--arm", help="the arm of a compare.py results.json")
    parser.add_argument("--rows", type=int, default=4, choices=range(1, 21), metavar="1..20",
                        help="rows of images (4)")
    parser.add_argument("--cols", type=int, default=8, choices=range(1, 21), metavar="1..20",
                        help="images per row (8)")
    parser.add_argument("-o", "--output", required=True,
                        help="PNG file to write ((150 * cols) x (170 * rows + 70) pixels)")
    parser.add_argument("--title", help="figure title")
    return plot_main("plot_gallery", parser,
                     lambda a: plot(a.input, a.data, a.output, a.rows, a.cols, a.arm, a.title), argv)


if __name__ == "__main__":
    sys.exit(main())

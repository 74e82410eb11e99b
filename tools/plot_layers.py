#!/usr/bin/env python3
"""Which maps a gated model keeps: a heat map of every gated map's on-rate (the fraction of
test images whose thresholded mask keeps it), one row per dense layer, one column per map;
or, with --by-class, one column per class: the layer's kept fraction among that class's images.

Usage:
    python3 tools/plot_layers.py EVAL.json -o layers.png
    python3 tools/plot_layers.py docs/results/initmask-gated-p4.json -o layers.png
    python3 tools/plot_layers.py docs/results/compare-cifar10.json --arm fixed-p8 -o layers.png
    python3 tools/plot_layers.py RUN -o layers.png          # the last epoch of metrics.jsonl
    python3 tools/plot_layers.py EVAL.json --by-class -o classes.png

The input is `mapgate eval --json` output of a gated model, an object {"eval": EVAL, ...},
compare.py's results.json with --arm, or a run directory (test_input_dependence of its last
epoch). The on-rates are input_dependence.map_on_rate (layer after layer, k maps each; the
model's 3 dense blocks are separated by white lines); the number right of each row is the
layer's kept fraction. --by-class needs the evaluation's per_example labels and masks
(docs/pictures.md). Writes a 900 x 700 PNG.
"""
import argparse
import sys

import numpy as np

from mapgate_files import PlotError, load_evaluation, per_example, run_name
from plot_common import figure, main as plot_main, save

_SIZE = (900, 700)  # pixels
_BLOCKS = 3  # DenseNets for CIFAR and MNIST here have 3 dense blocks (src/model/config.h)


def on_rate_rows(evaluation, where):
    """map_on_rate as rows of k maps, one per gated layer; PlotError naming `where` if absent."""
    rates = (evaluation.get("input_dependence") or {}).get("map_on_rate")
    layers = evaluation.get("per_layer_active")
    if not isinstance(rates, list) or not rates:
        raise PlotError('%s: no input_dependence.map_on_rate (a dense model, or evaluated by a mapgate '
                        'older than map_on_rate: evaluate it again)' % where)
    if not isinstance(layers, list) or not layers or len(rates) % len(layers):
        raise PlotError("%s: %d map on-rates do not split into the %s layers of per_layer_active"
                        % (where, len(rates), len(layers) if isinstance(layers, list) else "missing"))
    k = len(rates) // len(layers)
    return [rates[i * k:(i + 1) * k] for i in range(len(layers))]


def _row_labels(count):
    """"block.layer" for each gated layer when they split into the dense blocks, else 1..n."""
    if count % _BLOCKS:
        return [str(i + 1) for i in range(count)]
    per = count // _BLOCKS
    return ["%d.%d" % (i // per + 1, i % per + 1) for i in range(count)]


def class_rows(evaluation, where):
    """Kept fraction of each gated layer (rows) among the test images of each class (columns),
    from per-example masks; with the class names and each layer's kept fraction over all images."""
    columns = per_example(evaluation, where, ("label", "mask"))
    layers = len(on_rate_rows(evaluation, where))
    masks = np.array([[c == "1" for c in m] for m in columns["mask"]], dtype=float)
    if masks.shape[1] != len(evaluation["input_dependence"]["map_on_rate"]):
        raise PlotError("%s: per_example masks have %d maps but map_on_rate has %d"
                        % (where, masks.shape[1], len(evaluation["input_dependence"]["map_on_rate"])))
    kept = masks.reshape(len(masks), layers, -1).mean(axis=2)  # images x layers
    labels = np.array(columns["label"])
    names = [c.get("class", str(i)) for i, c in enumerate(evaluation.get("per_class") or [])]
    names += [str(i) for i in range(len(names), labels.max() + 1)]
    rows = [[kept[labels == c, l].mean() if (labels == c).any() else float("nan") for c in range(len(names))]
            for l in range(layers)]
    return rows, names, list(kept.mean(axis=0))


def _shade(rows, right, by_class):
    """(colours, imshow keywords, colour bar label): the on-rate itself for maps; for classes
    the difference from the layer's kept fraction over all images (classes differ by little)."""
    if not by_class:
        return rows, {"cmap": "viridis", "vmin": 0, "vmax": 1}, "fraction of test images that keep the map"
    diff = np.array(rows) - np.array(right)[:, None]
    limit = max(0.05, float(np.nanmax(np.abs(diff))))
    return diff, {"cmap": "RdBu_r", "vmin": -limit, "vmax": limit}, \
        "kept fraction among the class's images minus the layer's over all images"


def _draw(ax, rows, column_names, right, by_class):
    """The heat map, each cell's value, and `right` (one number per row) beside the rows."""
    colours, keywords, label = _shade(rows, right, by_class)
    image = ax.imshow(colours, aspect="auto", interpolation="nearest", **keywords)
    if by_class:
        dark = lambda r, c: abs(colours[r][c]) > 0.6 * keywords["vmax"]  # noqa: E731
    else:
        dark = lambda r, c: colours[r][c] < 0.6  # noqa: E731
    for r, row in enumerate(rows):
        for c, rate in enumerate(row):
            ax.text(c, r, "%.2f" % rate, ha="center", va="center", fontsize=6,
                    color="white" if dark(r, c) else "black")
        ax.text(len(row) - 0.3, r, " %.2f" % right[r], ha="left", va="center", fontsize=8)
    if len(rows) % _BLOCKS == 0:
        for b in range(1, _BLOCKS):
            ax.axhline(b * len(rows) // _BLOCKS - 0.5, color="black" if by_class else "white", linewidth=3)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(_row_labels(len(rows)), fontsize=8)
    ax.set_xticks(range(len(column_names)))
    ax.set_xticklabels(column_names, fontsize=8, rotation=30 if max(map(len, column_names)) > 3 else 0)
    ax.set_ylabel("dense layer (block.layer)")
    return image, label


def _title(name, evaluation, by_class):
    parts = [name + (": kept fraction of each layer per class" if by_class else ": on-rate of each gated map")]
    if evaluation.get("threshold") is not None:
        parts.append("tau %g" % evaluation["threshold"])
    if evaluation.get("examples"):
        parts.append("%d test images" % evaluation["examples"])
    conditional = (evaluation.get("input_dependence") or {}).get("conditional_fraction")
    if conditional is not None:
        parts.append("%.1f%% of maps conditional" % (100 * conditional))
    return ", ".join(parts)


def plot(path, output, arm=None, title=None, by_class=False):
    evaluation = load_evaluation(path, arm)
    where = path + (" arm " + arm if arm else "")
    if by_class:
        rows, columns, right = class_rows(evaluation, where)
        xlabel = "class of the test image (cells: the layer's kept fraction among its images)"
    else:
        rows = on_rate_rows(evaluation, where)
        columns, right = [str(c + 1) for c in range(len(rows[0]))], [sum(r) / len(r) for r in rows]
        xlabel = "map of the layer (its k new feature maps)"
    fig, ax = figure(*_SIZE)
    image, bar = _draw(ax, rows, columns, right, by_class)
    ax.set_xlabel(xlabel + "; right: the layer's kept fraction")
    fig.colorbar(image, ax=ax, pad=0.08, label=bar)
    ax.set_title(title or _title(arm or run_name(path), evaluation, by_class), fontsize=10)
    fig.tight_layout()
    save(fig, output)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="plot_layers.py",
                                     description="Heat map of the on-rate of every gated map, per layer.",
                                     epilog="example: python3 tools/plot_layers.py "
                                            "docs/results/initmask-gated-p4.json -o layers.png")
    parser.add_argument("input", help="`mapgate eval --json` output, compare.py results.json (with --arm) "
                                      "or a run directory")
    parser.add_argument("--arm", help="the arm of a compare.py results.json")
    parser.add_argument("--by-class", action="store_true",
                        help="one column per class instead of per map: needs per_example masks (docs/pictures.md)")
    parser.add_argument("-o", "--output", required=True, help="PNG file to write (900 x 700)")
    parser.add_argument("--title", help="plot title")
    return plot_main("plot_layers", parser, lambda a: plot(a.input, a.output, a.arm, a.title, a.by_class), argv)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Which maps a gated model keeps: a heat map of every gated map's on-rate (the fraction of
test images whose thresholded mask keeps it), one row per dense layer, one column per map.

Usage:
    python3 tools/plot_layers.py EVAL.json -o layers.png
    python3 tools/plot_layers.py docs/results/initmask-gated-p4.json -o layers.png
    python3 tools/plot_layers.py docs/results/compare-cifar10.json --arm fixed-p8 -o layers.png
    python3 tools/plot_layers.py RUN -o layers.png          # the last epoch of metrics.jsonl

The input is `mapgate eval --json` output of a gated model, an object {"eval": EVAL, ...},
compare.py's results.json with --arm, or a run directory (test_input_dependence of its last
epoch). The on-rates are input_dependence.map_on_rate (layer after layer, k maps each; the
model's 3 dense blocks are separated by white lines); the number right of each row is the
layer's kept fraction. Writes a 900 x 700 PNG.
"""
import argparse
import os
import sys

from plot_common import PlotError, figure, main as plot_main, read_json, read_metrics, run_name, save

_SIZE = (900, 700)  # pixels
_BLOCKS = 3  # DenseNets for CIFAR and MNIST here have 3 dense blocks (src/model/config.h)


def _from_compare(obj, path, arm_name):
    names = [a.get("name") for a in obj["arms"] if isinstance(a, dict)]
    for arm in obj["arms"]:
        if isinstance(arm, dict) and arm.get("name") == arm_name:
            if not isinstance(arm.get("eval"), dict):
                raise PlotError('%s: arm "%s" has no "eval"' % (path, arm_name))
            return arm["eval"]
    if arm_name is None:
        raise PlotError("%s: a comparison; choose its arm with --arm (one of %s)" % (path, ", ".join(names)))
    raise PlotError('%s: no arm "%s" (there are %s)' % (path, arm_name, ", ".join(names)))


def _from_run(path):
    last = read_metrics(path)[-1]
    return {"input_dependence": last.get("test_input_dependence") or {}, "threshold": None,
            "per_layer_active": last.get("test_per_layer_active"), "examples": last.get("test_examples"),
            "epoch": last["epoch"]}


def load_evaluation(path, arm_name=None):
    """The evaluation dict of a gated model from any of the inputs the module's text names."""
    if os.path.isdir(path):
        return _from_run(path)
    obj = read_json(path)
    if isinstance(obj, dict) and isinstance(obj.get("arms"), list):
        return _from_compare(obj, path, arm_name)
    if isinstance(obj, dict) and isinstance(obj.get("eval"), dict):
        return obj["eval"]
    if isinstance(obj, dict) and "accuracy" in obj:
        return obj
    raise PlotError("%s: expected `mapgate eval --json` output, compare.py's results.json or a run "
                    "directory" % path)


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


def _draw(ax, rows):
    image = ax.imshow(rows, cmap="viridis", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    for r, row in enumerate(rows):
        for c, rate in enumerate(row):
            ax.text(c, r, "%.2f" % rate, ha="center", va="center", fontsize=6,
                    color="black" if rate > 0.6 else "white")
        ax.text(len(row) - 0.3, r, " %.2f" % (sum(row) / len(row)), ha="left", va="center", fontsize=8)
    if len(rows) % _BLOCKS == 0:
        for b in range(1, _BLOCKS):
            ax.axhline(b * len(rows) // _BLOCKS - 0.5, color="white", linewidth=3)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(_row_labels(len(rows)), fontsize=8)
    ax.set_xticks(range(len(rows[0])))
    ax.set_xticklabels([str(c + 1) for c in range(len(rows[0]))], fontsize=8)
    ax.set_xlabel("map of the layer (its k new feature maps); right: the layer's kept fraction")
    ax.set_ylabel("dense layer (block.layer)")
    return image


def _title(name, evaluation):
    parts = [name + ": on-rate of each gated map"]
    if evaluation.get("threshold") is not None:
        parts.append("tau %g" % evaluation["threshold"])
    if evaluation.get("examples"):
        parts.append("%d test images" % evaluation["examples"])
    conditional = (evaluation.get("input_dependence") or {}).get("conditional_fraction")
    if conditional is not None:
        parts.append("%.0f%% of maps conditional" % (100 * conditional))
    return ", ".join(parts)


def plot(path, output, arm=None, title=None):
    evaluation = load_evaluation(path, arm)
    rows = on_rate_rows(evaluation, path + (" arm " + arm if arm else ""))
    fig, ax = figure(*_SIZE)
    image = _draw(ax, rows)
    fig.colorbar(image, ax=ax, pad=0.08, label="fraction of test images that keep the map")
    ax.set_title(title or _title(arm or run_name(path), evaluation), fontsize=10)
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
    parser.add_argument("-o", "--output", required=True, help="PNG file to write (900 x 700)")
    parser.add_argument("--title", help="plot title")
    return plot_main("plot_layers", parser, lambda a: plot(a.input, a.output, a.arm, a.title), argv)


if __name__ == "__main__":
    sys.exit(main())

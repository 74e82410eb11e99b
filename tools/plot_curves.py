#!/usr/bin/env python3
"""Training curves of one or more runs from their metrics.jsonl (one line per epoch, written
by `mapgate train`; keys in docs/method.md §4).

Usage:
    python3 tools/plot_curves.py RUN [RUN ...] -o curves.png
    python3 tools/plot_curves.py models/densenet22-cifar10 models/densenet22-gated -o curves.png

Three panels against the epoch: top-1 accuracy (test solid, training dashed); the kept
fraction of gated maps (test_active_fraction under thresholded masks solid,
train_kept_fraction under sampled masks dashed); mean MACs per image in millions
(test_macs_mean solid, train_macs_mean dashed, the dense network dotted). A dense run has
no gate keys and appears in the accuracy panel only. A RUN is a run directory or a
metrics.jsonl file. Writes a 1200 x 420 PNG.
"""
import argparse
import sys

from mapgate_files import read_metrics, run_name
from plot_common import figure, main as plot_main, save

_SIZE = (1200, 420)  # pixels
_COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:gray"]
# Per panel: title, y label, scale, (key of the solid line, key of the dashed line).
_PANELS = [
    ("accuracy", "top-1 accuracy", 1, ("test_accuracy", "train_accuracy")),
    ("kept fraction of gated maps", "kept fraction", 1, ("test_active_fraction", "train_kept_fraction")),
    ("MACs per image", "mean MACs (millions)", 1e-6, ("test_macs_mean", "train_macs_mean")),
]


def _series(rows, key, scale):
    """(epochs, values) of the rows that have key."""
    points = [(r["epoch"], r[key] * scale) for r in rows if isinstance(r.get(key), (int, float))]
    return [p[0] for p in points], [p[1] for p in points]


def _draw_panel(ax, runs, panel):
    """One panel for every run; returns whether any run had data for it."""
    title, ylabel, scale, (solid, dashed) = panel
    drawn = False
    for index, (name, rows) in enumerate(runs):
        color = _COLORS[index % len(_COLORS)]
        for key, style, label in ((solid, "-", name), (dashed, "--", None)):
            xs, ys = _series(rows, key, scale)
            if xs:
                ax.plot(xs, ys, style, color=color, marker=".", label=label)
                drawn = True
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    return drawn


def _draw_dense_macs(ax, runs):
    """A dotted line at each distinct dense MAC count the runs report."""
    for dense in sorted({r["test_macs_dense"] for _, rows in runs for r in rows if r.get("test_macs_dense")}):
        ax.axhline(dense / 1e6, linestyle=":", color="gray")
        ax.annotate("dense", (0, dense / 1e6), xycoords=("axes fraction", "data"), textcoords="offset points",
                    xytext=(3, -11), color="gray", fontsize=8)


def plot(paths, output, title=None):
    runs = [(run_name(p), read_metrics(p)) for p in paths]
    fig, axes = figure(*_SIZE, ncols=len(_PANELS))
    for ax, panel in zip(axes, _PANELS):
        if not _draw_panel(ax, runs, panel):
            ax.text(0.5, 0.5, "no gated run", transform=ax.transAxes, ha="center", color="gray")
        elif ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        if max(len(rows) for _, rows in runs) < 20:
            ax.set_xticks(range(1, max(r["epoch"] for _, rows in runs for r in rows) + 1))
    _draw_dense_macs(axes[2], runs)
    axes[1].set_ylim(0, 1.02)
    axes[2].set_ylim(bottom=0)
    fig.suptitle((title or ", ".join(name for name, _ in runs)) + "   (solid: test, dashed: training)")
    fig.tight_layout()
    save(fig, output)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="plot_curves.py",
                                     description="Accuracy, kept fraction and MACs per epoch of training runs.",
                                     epilog="example: python3 tools/plot_curves.py models/densenet22-cifar10 "
                                            "models/densenet22-gated -o curves.png")
    parser.add_argument("runs", nargs="+", help="run directory (or its metrics.jsonl)")
    parser.add_argument("-o", "--output", required=True, help="PNG file to write (1200 x 420)")
    parser.add_argument("--title", help="figure title (default: the run names)")
    return plot_main("plot_curves", parser, lambda a: plot(a.runs, a.output, a.title), argv)


if __name__ == "__main__":
    sys.exit(main())

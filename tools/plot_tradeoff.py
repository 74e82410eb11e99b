#!/usr/bin/env python3
"""Accuracy against mean MACs for every arm of one or more comparisons (tools/compare.py).

Usage:
    python3 tools/plot_tradeoff.py OUT/results.json [MORE/results.json ...] -o plot.png

x: mean MACs per image in millions; y: top-1 test accuracy. Gated arms are a line over
their tau curve with the tau = 0.5 point marked (their own eval point when the curve has
no 0.5); static, random, fixed, thin and dense arms are single points with their own
markers; every point is labelled with its arm. A dashed vertical line marks dense MACs / 3 ("x3").
The title is the config name (names joined when several files are given; their arm labels
are then prefixed with it). Writes a 900x600 PNG (matplotlib, Agg backend: no display).
"""
import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

# Marker and colour of each single-point kind; gated arms take colours from a cycle.
_STYLE = {
    "dense": {"marker": "*", "color": "black", "s": 180},
    "static": {"marker": "s", "color": "tab:orange", "s": 60},
    "random": {"marker": "^", "color": "tab:red", "s": 70},
    "fixed": {"marker": "v", "color": "goldenrod", "s": 70},
    "thin": {"marker": "D", "color": "tab:green", "s": 55},
}
_GATED_COLORS = ["tab:blue", "tab:purple", "tab:cyan", "tab:brown", "tab:olive", "tab:pink", "tab:gray"]
_FIG_INCHES, _DPI = (9, 6), 100  # 900 x 600 pixels


class PlotError(Exception):
    pass


def load_results(path):
    """(name, arms) of a results.json: compare.py's {"name", "arms": [...]}, or a bare list."""
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except OSError as e:
        raise PlotError("%s: cannot read (%s)" % (path, e.strerror or e))
    except ValueError as e:
        raise PlotError("%s: not valid JSON (%s)" % (path, e))
    if isinstance(obj, list):
        name, arms = os.path.basename(os.path.dirname(os.path.abspath(path))), obj
    elif isinstance(obj, dict) and isinstance(obj.get("arms"), list):
        name, arms = obj.get("name") or os.path.basename(os.path.dirname(os.path.abspath(path))), obj["arms"]
    else:
        raise PlotError('%s: expected compare.py\'s results: an object with "arms" (a list), or a list' % path)
    for i, arm in enumerate(arms):
        for key in ("name", "kind", "macs_mean", "accuracy"):
            if not isinstance(arm, dict) or arm.get(key) is None:
                raise PlotError('%s: arm %d has no "%s"' % (path, i, key))
    return name, arms


def _tau_point(arm):
    """(macs, accuracy) of a gated arm at tau 0.5: from its curve, else its own eval."""
    for p in arm.get("curve") or []:
        if abs(p.get("threshold", -1) - 0.5) < 1e-9:
            return p["macs_mean"], p["accuracy"]
    return arm["macs_mean"], arm["accuracy"]


def _dense_macs(arms):
    for arm in arms:
        if arm["kind"] == "dense":
            return arm["macs_mean"]
    for arm in arms:
        dense = (arm.get("eval") or {}).get("macs_dense")
        if dense:
            return dense
    return None


def plot(files, output, title=None):
    fig, ax = plt.subplots(figsize=_FIG_INCHES, dpi=_DPI)
    names, x3_lines, legend_kinds = [], set(), set()
    gated_index = 0
    for path in files:
        name, arms = load_results(path)
        names.append(name)
        prefix = name + ": " if len(files) > 1 else ""
        for arm in arms:
            label = prefix + arm["name"]
            kind = arm["kind"]
            if kind == "gated":
                color = _GATED_COLORS[gated_index % len(_GATED_COLORS)]
                gated_index += 1
                curve = sorted((p for p in arm.get("curve") or [] if p.get("macs_mean") is not None),
                               key=lambda p: p["macs_mean"])
                if curve:
                    xs = [p["macs_mean"] / 1e6 for p in curve]
                    ys = [p["accuracy"] for p in curve]
                    ax.plot(xs, ys, "-", color=color, marker=".", markersize=6, linewidth=1.5, label=label)
                mx, my = _tau_point(arm)
                ax.scatter([mx / 1e6], [my], marker="o", s=70, color=color, edgecolors="black", zorder=3,
                           label=None if curve else label)
                text = label + " (tau 0.5)"
            else:
                style = _STYLE.get(kind, {"marker": "x", "color": "gray", "s": 60})
                mx, my = arm["macs_mean"], arm["accuracy"]
                ax.scatter([mx / 1e6], [my], marker=style["marker"], s=style["s"], color=style["color"],
                           edgecolors="black", linewidths=0.5, zorder=3,
                           label=kind if kind not in legend_kinds else None)
                legend_kinds.add(kind)
                text = label
            ax.annotate(text, (mx / 1e6, my), textcoords="offset points", xytext=(6, 4), fontsize=8)
        dense = _dense_macs(arms)
        if dense:
            x3_lines.add(round(dense / 3))
    for x in sorted(x3_lines):
        ax.axvline(x / 1e6, linestyle="--", color="gray", linewidth=1)
        ax.annotate("x3", (x / 1e6, 1), xycoords=("data", "axes fraction"), textcoords="offset points",
                    xytext=(3, -12), color="gray", fontsize=9)
    ax.set_xlabel("mean MACs per image (millions)")
    ax.set_ylabel("test accuracy")
    ax.set_title(title or " vs ".join(names))
    ax.grid(True, alpha=0.3)
    ax.set_xlim(left=0)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(output, dpi=_DPI)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="plot_tradeoff.py",
                                     description="Accuracy against mean MACs for compare.py results.")
    parser.add_argument("results", nargs="+", help="results.json written by tools/compare.py")
    parser.add_argument("-o", "--output", required=True, help="PNG file to write")
    parser.add_argument("--title", help="plot title (default: the config names)")
    args = parser.parse_args(argv)
    try:
        plot(args.results, args.output, args.title)
    except PlotError as e:
        print("plot_tradeoff: %s" % e, file=sys.stderr)
        return 1
    except OSError as e:
        print("plot_tradeoff: %s: cannot write (%s)" % (args.output, e.strerror or e), file=sys.stderr)
        return 1
    print("wrote %s" % args.output, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Accuracy against mean MACs for every arm of one or more comparisons (tools/compare.py),
evaluations (`mapgate eval --json`, with or without --thresholds) or run directories.

Usage:
    python3 tools/plot_tradeoff.py OUT/results.json [MORE/results.json ...] -o plot.png
    python3 tools/plot_tradeoff.py docs/results/initmask-gated-p4.json -o initmask.png
    python3 tools/plot_tradeoff.py RUN_A RUN_B -o runs.png     # last epoch of each run
    python3 tools/plot_tradeoff.py A.json B.json --names A,B --arms A:thin-k6,gated-p4 -o some.png

An input is compare.py's results.json (or a bare list of its arms); one `mapgate eval
--json` output, one `mapgate eval --thresholds ... --json` output (a tau curve), or an
object {"eval": EVAL, "curve": CURVE} holding both, each a gated arm named after its
model's run directory; or a gated run directory, its last epoch in metrics.jsonl a point.

x: mean MACs per image in millions; y: top-1 test accuracy. Gated arms are a line over
their tau curve with the tau = 0.5 point marked (their own eval point when the curve has
no 0.5), a cascade (tools/cascade.py) a line over its confidence thresholds; static,
random, fixed, thin and dense arms are single points with their own markers; every point
is labelled with its arm (a label moves below or above its point where it would overlap an
earlier one). A dashed vertical line marks dense MACs / 3 ("x3").
The title is the config name (names joined when several files are given; their arm labels
are then prefixed with it, or with the short names of --names A,B,..). A dense arm already
drawn from an earlier file (same MACs and accuracy) is not drawn again. --arms draws only
the arms it names (NAME in any input, SHORT:NAME in one); an entry that names no arm is an
error. Writes a 900x600
PNG (matplotlib, Agg backend: no display).
"""
import argparse
import os
import sys

from mapgate_files import PlotError, read_json, read_metrics, run_name
from plot_common import figure, main as plot_main, save

# Marker and colour of each single-point kind; gated arms take colours from a cycle.
_STYLE = {
    "dense": {"marker": "*", "color": "black", "s": 180},
    "static": {"marker": "s", "color": "tab:orange", "s": 60},
    "random": {"marker": "^", "color": "tab:red", "s": 70},
    "fixed": {"marker": "v", "color": "goldenrod", "s": 70},
    "thin": {"marker": "D", "color": "tab:green", "s": 55},
}
_GATED_COLORS = ["tab:blue", "tab:purple", "tab:cyan", "tab:brown", "tab:olive", "tab:pink", "tab:gray"]
_SIZE = (900, 600)  # pixels
_NOT_RESULTS = ('expected compare.py\'s results (an object with "arms", or a list of arms), '
                '`mapgate eval --json` output, or a run directory')


def load_results(path):
    """(name, arms) of one input: compare.py's {"name", "arms": [...]} or a bare list of
    arms, an evaluation (see the module's text), or a run directory."""
    if os.path.isdir(path):
        return run_name(path), [_arm_from_run(path)]
    obj = read_json(path)
    folder = os.path.basename(os.path.dirname(os.path.abspath(path)))
    if isinstance(obj, list):
        name, arms = folder, obj
    elif isinstance(obj, dict) and isinstance(obj.get("arms"), list):
        name, arms = obj.get("name") or folder, obj["arms"]
    elif isinstance(obj, dict) and ("accuracy" in obj or "curve" in obj or "eval" in obj):
        name, arms = run_name(path), [_arm_from_eval(obj, path)]
    else:
        raise PlotError("%s: %s" % (path, _NOT_RESULTS))
    for i, arm in enumerate(arms):
        for key in ("name", "kind", "macs_mean", "accuracy"):
            if not isinstance(arm, dict) or arm.get(key) is None:
                raise PlotError('%s: arm %d has no "%s"' % (path, i, key))
    return name, arms


def _model_name(model, path):
    """The run directory's name of a model path (".../gated-p4/checkpoint.pt": gated-p4)."""
    if not isinstance(model, str) or not model:
        return run_name(path)
    model = model.rstrip("/")
    if model.endswith(".pt"):
        model = os.path.dirname(model) or model
    return os.path.basename(model)


def _arm_from_eval(obj, path):
    """A gated arm from an eval, a --thresholds curve, or {"eval": .., "curve": ..}; a dense eval's point."""
    evaluation = obj.get("eval") if "eval" in obj else (obj if "accuracy" in obj else None)
    curve = obj.get("curve")
    curve = curve.get("curve") if isinstance(curve, dict) else curve
    if evaluation is not None and not isinstance(evaluation, dict):
        raise PlotError('%s: "eval" is not an object' % path)
    if curve is not None and not (isinstance(curve, list) and all(isinstance(p, dict) for p in curve)):
        raise PlotError('%s: "curve" is not a list of points' % path)
    source = evaluation or obj
    if evaluation is not None and evaluation.get("macs_mean") is None:
        raise PlotError('%s: the evaluation has no "macs_mean" (made by a mapgate older than its dense '
                        'macs keys: evaluate it again, or take its MACs from `mapgate flops`)' % path)
    if evaluation is None:
        if not curve:
            raise PlotError('%s: "curve" is empty' % path)
        evaluation = min(curve, key=lambda p: abs(p.get("threshold", 0.5) - 0.5))
    # `mapgate eval --json` of a dense model: one point, macs_mean the dense count, no tau.
    kind = "gated" if curve or "threshold" in evaluation else "dense"
    return {"name": _model_name(source.get("model"), path), "kind": kind, "curve": curve,
            "macs_mean": evaluation.get("macs_mean"), "accuracy": evaluation.get("accuracy"),
            "eval": evaluation}


def _arm_from_run(path):
    """A gated arm from the last epoch of a run directory's metrics.jsonl."""
    last = read_metrics(path)[-1]
    if last.get("test_macs_mean") is None:
        raise PlotError('%s: epoch %d has no "test_macs_mean" (a dense run: its MACs come from '
                        '`mapgate flops`)' % (os.path.join(path, "metrics.jsonl"), last["epoch"]))
    return {"name": run_name(path), "kind": "gated", "curve": None, "macs_mean": last["test_macs_mean"],
            "accuracy": last.get("test_accuracy"), "eval": {"macs_dense": last.get("test_macs_dense")}}


def _tau_point(arm):
    """(macs, accuracy, threshold) of an arm's marked point on its curve: at its "threshold"
    (a cascade's, tools/cascade.py), else at tau 0.5; without that point, its own eval."""
    marked = arm.get("threshold", 0.5)
    for p in arm.get("curve") or []:
        if abs(p.get("threshold", -1) - marked) < 1e-9:
            return p["macs_mean"], p["accuracy"], marked
    return arm["macs_mean"], arm["accuracy"], (arm.get("eval") or {}).get("threshold", marked)


def _dense_macs(arms):
    for arm in arms:
        if arm["kind"] == "dense":
            return arm["macs_mean"]
    for arm in arms:
        dense = (arm.get("eval") or {}).get("macs_dense")
        if dense:
            return dense
    return None


def _draw_gated(ax, arm, label, color):
    """The arm's tau curve (if any) and its tau 0.5 point; returns the point and its text."""
    curve = sorted((p for p in arm.get("curve") or [] if p.get("macs_mean") is not None),
                   key=lambda p: p["macs_mean"])
    if curve:
        xs = [p["macs_mean"] / 1e6 for p in curve]
        ys = [p["accuracy"] for p in curve]
        ax.plot(xs, ys, "-", color=color, marker=".", markersize=6, linewidth=1.5, label=label)
    mx, my, tau = _tau_point(arm)
    ax.scatter([mx / 1e6], [my], marker="o", s=70, color=color, edgecolors="black", zorder=3,
               label=None if curve else label)
    what = "confidence < %g: second model" if arm["kind"] == "cascade" else "tau %g"
    return mx, my, label + " (" + what % tau + ")"


def _draw_single(ax, arm, label, legend_kinds):
    """A dense, static, random, fixed or thin arm: one marker, its kind in the legend once."""
    kind = arm["kind"]
    style = _STYLE.get(kind, {"marker": "x", "color": "gray", "s": 60})
    mx, my = arm["macs_mean"], arm["accuracy"]
    ax.scatter([mx / 1e6], [my], marker=style["marker"], s=style["s"], color=style["color"],
               edgecolors="black", linewidths=0.5, zorder=3, label=kind if kind not in legend_kinds else None)
    legend_kinds.add(kind)
    return mx, my, label


def _selected(arms, short, wanted, matched):
    """The arms named in `wanted` ("NAME" or "SHORT:NAME"; None: every arm); records the
    entries that matched."""
    if wanted is None:
        return arms
    chosen = []
    for arm in arms:
        keys = {arm["name"], short + ":" + arm["name"]} & wanted
        if keys:
            chosen.append(arm)
            matched.update(keys)
    return chosen


def plot(files, output, title=None, short_names=None, wanted=None):
    """Draws and writes the plot; returns the point labels drawn, in order. `wanted`: a
    set of arm names ("NAME", or "SHORT:NAME" for one input) to draw instead of all."""
    fig, ax = figure(*_SIZE)
    names, x3_lines, legend_kinds, labels, anchors = [], set(), set(), [], []
    dense_points, matched = set(), set()
    gated_index = 0
    for i, path in enumerate(files):
        name, all_arms = load_results(path)
        names.append(name)
        short = short_names[i] if short_names else name
        arms = _selected(all_arms, short, wanted, matched)
        prefix = short + ": " if len(files) > 1 else ""
        for arm in arms:
            if arm["kind"] == "dense":
                point = (arm["macs_mean"], arm["accuracy"])
                if point in dense_points:
                    continue
                dense_points.add(point)
            if arm["kind"] in ("gated", "cascade"):
                color = _GATED_COLORS[gated_index % len(_GATED_COLORS)]
                gated_index += 1
                mx, my, text = _draw_gated(ax, arm, prefix + arm["name"], color)
            else:
                mx, my, text = _draw_single(ax, arm, prefix + arm["name"], legend_kinds)
            anchors.append((mx / 1e6, my, text))
            labels.append(text)
        dense = _dense_macs(all_arms)
        if dense and arms:
            x3_lines.add(round(dense / 3))
    if wanted is not None and wanted - matched:
        raise PlotError("--arms: %s names no arm of the inputs (an entry is NAME or SHORT:NAME, SHORT "
                        "from --names or the config name)" % ", ".join(sorted(wanted - matched)))
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
    place_labels(fig, ax, anchors)  # before the layout, which makes room for labels past the axes
    fig.tight_layout()
    save(fig, output)
    return labels


# Where a point's label may go, in points from the point: beside it first, then stepped
# below and above it, so that labels of points that (nearly) coincide stay readable.
_LABEL_OFFSETS = [(6, 4)] + [(6, 4 + sign * 11 * i) for i in range(1, 6) for sign in (-1, 1)]


def place_labels(fig, ax, anchors):
    """Annotates each (x, y, text) at the first offset whose box overlaps no label placed
    before it (the first offset when none is free); returns the annotations."""
    renderer = fig.canvas.get_renderer()
    placed, boxes = [], []
    for x, y, text in anchors:
        note = ax.annotate(text, (x, y), textcoords="offset points", xytext=_LABEL_OFFSETS[0], fontsize=8)
        for offset in _LABEL_OFFSETS:
            note.set_position(offset)
            box = note.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in boxes):
                break
        else:
            note.set_position(_LABEL_OFFSETS[0])
            box = note.get_window_extent(renderer)
        placed.append(note)
        boxes.append(box)
    return placed


def _plot_args(a, parser):
    names = None
    if a.names is not None:
        names = a.names.split(",")
        if len(names) != len(a.results):
            parser.error("--names: %d names for %d inputs; give one per input, in order"
                         % (len(names), len(a.results)))
    wanted = set(a.arms.split(",")) if a.arms is not None else None
    return plot(a.results, a.output, a.title, names, wanted)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="plot_tradeoff.py",
                                     description="Accuracy against mean MACs for compare.py results, "
                                                 "mapgate eval JSON or run directories.",
                                     epilog="example: python3 tools/plot_tradeoff.py "
                                            "docs/results/compare-cifar10.json "
                                            "docs/results/initmask-gated-p4.json -o tradeoff.png")
    parser.add_argument("results", nargs="+",
                        help="results.json of tools/compare.py, `mapgate eval [--thresholds ..] --json` "
                             "output, or a gated run directory")
    parser.add_argument("-o", "--output", required=True, help="PNG file to write (900 x 600)")
    parser.add_argument("--title", help="plot title (default: the config names)")
    parser.add_argument("--names", help="comma-separated short label prefixes, one per input "
                                        "(default: each input's config name)")
    parser.add_argument("--arms", help="comma-separated arms to draw, each NAME or SHORT:NAME (SHORT: the "
                                       "input's --names entry or config name; default: every arm)")
    return plot_main("plot_tradeoff", parser, lambda a: _plot_args(a, parser), argv)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Input-dependent computation at the coarsest grain: a two-model cascade. Every test image
runs the first (cheap) model; an image whose top softmax probability there is below a
threshold t also runs the second model, whose prediction then counts. Per threshold: the
accuracy, the mean MACs per image (the first model's for every image plus the second's for
the escalated ones) and the fraction escalated. A reference point for what routing per image
can be worth on a protocol, not a method of mapgate's: it trains two networks.

Usage:
    python3 tools/cascade.py FIRST.json SECOND.json -o cascade.json [--thresholds 0.5,0.9]
        [--name NAME] [--at 36.7,23.2]

FIRST.json, SECOND.json: `mapgate eval --json --per-example` on the same test images (a
dense model's MACs are its macs_mean, a gated one's each image's own). Writes compare.py's
results format ({"name", "arms": [one arm of kind "cascade" with its threshold curve]}),
which tools/plot_tradeoff.py draws; prints the curve as a Markdown table, and with --at the
accuracy the curve reaches at those mean MACs (in millions; linear between its points).
"""
import argparse
import json
import sys

import numpy as np

from mapgate_files import PlotError, load_evaluation, per_example, run_name

_DEFAULT_THRESHOLDS = [0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.01]
_MARKED_THRESHOLD = 0.9  # the arm's own point (macs_mean, accuracy): the curve's point nearest it


def stage(path):
    """(labels, correct, confidence, macs) arrays of one evaluation, and its name."""
    evaluation = load_evaluation(path)
    columns = per_example(evaluation, path, ["label", "prediction", "confidence"])
    labels = np.array(columns["label"])
    if "macs" in evaluation.get("per_example", {}):
        macs = np.array(per_example(evaluation, path, ["macs"])["macs"], dtype=float)
    elif isinstance(evaluation.get("macs_mean"), (int, float)):
        macs = np.full(len(labels), float(evaluation["macs_mean"]))
    else:
        raise PlotError('%s: no "macs_mean" (evaluate it again with this mapgate)' % path)
    return (labels, np.array(columns["prediction"]) == labels, np.array(columns["confidence"], dtype=float),
            macs), run_name(path)


def curve(first, second, thresholds):
    """One point per threshold t: images with first-model confidence < t take the second's answer."""
    labels1, correct1, confidence1, macs1 = first
    labels2, correct2, _, macs2 = second
    if len(labels1) != len(labels2) or (labels1 != labels2).any():
        raise PlotError("the two evaluations are not of the same test images (their labels differ)")
    points = []
    for t in thresholds:
        escalated = confidence1 < t
        correct = np.where(escalated, correct2, correct1)
        points.append({"threshold": t, "accuracy": float(correct.mean()),
                       "macs_mean": float((macs1 + escalated * macs2).mean()),
                       "escalated": float(escalated.mean())})
    return points


def accuracy_at(points, macs):
    """The curve's accuracy at mean MACs `macs`, linear between the points around it; None outside."""
    ordered = sorted(points, key=lambda p: p["macs_mean"])
    xs = [p["macs_mean"] for p in ordered]
    if not xs[0] <= macs <= xs[-1]:
        return None
    return float(np.interp(macs, xs, [p["accuracy"] for p in ordered]))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="cascade.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("first", help="`mapgate eval --json --per-example` of the cheap model")
    parser.add_argument("second", help="the same of the model escalated images run")
    parser.add_argument("-o", "--output", required=True, help="results JSON to write")
    parser.add_argument("--thresholds", help="comma-separated confidence thresholds (default: 0 to 1.01)")
    parser.add_argument("--name", help="the arm's name (default: FIRST>SECOND)")
    parser.add_argument("--at", help="comma-separated mean MACs in millions: the curve's accuracy there")
    a = parser.parse_args(argv)
    try:
        thresholds = [float(t) for t in a.thresholds.split(",")] if a.thresholds else _DEFAULT_THRESHOLDS
        at = [float(m) for m in a.at.split(",")] if a.at else []
    except ValueError as e:
        parser.error("--thresholds/--at: %s (expected comma-separated numbers)" % e)
    try:
        first, first_name = stage(a.first)
        second, second_name = stage(a.second)
        points = curve(first, second, thresholds)
    except PlotError as e:
        print("cascade.py: %s" % e, file=sys.stderr)
        return 1
    name = a.name or "%s>%s" % (first_name, second_name)
    marked = min(points, key=lambda p: abs(p["threshold"] - _MARKED_THRESHOLD))
    arm = {"name": name, "kind": "cascade", "macs_mean": marked["macs_mean"], "accuracy": marked["accuracy"],
           "threshold": marked["threshold"], "curve": points, "first": a.first, "second": a.second}
    with open(a.output, "w", encoding="utf-8") as f:
        json.dump({"name": name, "arms": [arm]}, f, indent=1)
    print("| threshold | escalated | mean MACs | accuracy |\n|---|---|---|---|")
    for p in points:
        print("| %g | %.3f | %.1f M | %.4f |" % (p["threshold"], p["escalated"], p["macs_mean"] / 1e6, p["accuracy"]))
    for m in at:
        acc = accuracy_at(points, m * 1e6)
        print("at %.1f M MACs: %s" % (m, "outside the curve" if acc is None else "accuracy %.4f" % acc))
    return 0


if __name__ == "__main__":
    sys.exit(main())

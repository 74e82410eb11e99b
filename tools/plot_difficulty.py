#!/usr/bin/env python3
"""Do the gates spend more on hard images? Test images sorted into equal-count bins by a
reference model's per-image loss (its cross-entropy: the difficulty), then, per bin, each
model's accuracy and, for a gated model, its mean MACs per image. Prints the same numbers as
a Markdown table, with the rank correlation (Spearman) of each gated model's per-image MACs
with the difficulty and with its own loss, and how much its masks tell about the difficulty
bin (mean mutual information per gated map, in bits, as `mapgate eval`'s mi_labels_bits
for the label; beside it the bins shuffled across images, and mi_labels_bits itself).

Usage:
    python3 tools/plot_difficulty.py DENSE.json GATED.json [OTHER.json ...] -o difficulty.png
    python3 tools/plot_difficulty.py dense.json gated-p4.json fixed-p4.json --bins 10 -o d.png

Every input is `mapgate eval --json --per-example` output (docs/pictures.md) on the same test
images; the first is the reference whose losses define the bins (the dense network, as a
model-independent difficulty; it is drawn too). Models are named by their file names.
Writes a 1200 x 500 PNG.
"""
import argparse
import sys

import numpy as np

from mapgate_files import PlotError, load_evaluation, per_example, run_name
from plot_common import figure, main as plot_main, save

_SIZE = (1200, 500)  # pixels


def read(evaluation, where, keys):
    """The per-example columns `keys` of an evaluation, as numpy arrays."""
    columns = per_example(evaluation, where, keys)
    return {k: np.array(v, dtype=float if k in ("loss", "macs") else int) for k, v in columns.items()}


def bins_of(difficulty, count):
    """count equal-size groups of example indices, easiest first (ties by index)."""
    if not 1 <= count <= len(difficulty):
        raise PlotError("--bins %d: needs 1 to %d (the number of test images)" % (count, len(difficulty)))
    return np.array_split(np.argsort(difficulty, kind="stable"), count)


def ranks(values):
    """Ranks 1..n, ties sharing their mean rank."""
    order = np.argsort(values, kind="stable")
    r = np.empty(len(values))
    r[order] = np.arange(1, len(values) + 1)
    for v in np.unique(values):
        same = values == v
        if same.sum() > 1:
            r[same] = r[same].mean()
    return r


def spearman(a, b):
    """Spearman's rank correlation; NaN where either side is constant (a static mask)."""
    ra, rb = ranks(np.asarray(a, dtype=float)), ranks(np.asarray(b, dtype=float))
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def mutual_information(masks, groups, count):
    """Mean over the columns of masks (images x maps, 0/1) of I(m_j; group) in bits, groups
    being integers 0..count-1 per image."""
    prior = np.bincount(groups, minlength=count) / len(groups)
    total = 0.0
    for column in masks.T:
        for value in (0, 1):
            chosen = column == value
            if chosen.any():
                given = np.bincount(groups[chosen], minlength=count) / chosen.sum()
                seen = given > 0
                total += chosen.mean() * np.sum(given[seen] * np.log2(given[seen] / prior[seen]))
    return total / masks.shape[1]


def mask_information(evaluation, where, bins):
    """(bits about the difficulty bin, about shuffled bins, about the label) of the masks; the
    last is mapgate's own input_dependence.mi_labels_bits (None if the evaluation lacks it)."""
    rows = per_example(evaluation, where, ("mask",))["mask"]
    masks = np.array([[c == "1" for c in row] for row in rows], dtype=np.int8)
    shuffled = np.random.default_rng(1).permutation(bins)
    return (mutual_information(masks, bins, bins.max() + 1), mutual_information(masks, shuffled, bins.max() + 1),
            (evaluation.get("input_dependence") or {}).get("mi_labels_bits"))


def summarise(paths, count):
    """(edges, models): the reference loss range of each bin and, per input, its name,
    accuracy and mean MACs per bin (None for a dense model), its Spearman correlations and
    what its masks tell (mask_information)."""
    evaluations = [load_evaluation(path) for path in paths]
    reference = read(evaluations[0], paths[0], ("label", "prediction", "loss"))
    groups = bins_of(reference["loss"], count)
    bin_of = np.empty(len(reference["loss"]), dtype=int)
    for b, g in enumerate(groups):
        bin_of[g] = b
    models = []
    for path, evaluation in zip(paths, evaluations):
        gated = "macs" in (evaluation.get("per_example") or {})
        m = read(evaluation, path, ("label", "prediction", "loss") + (("macs",) if gated else ()))
        if len(m["label"]) != len(reference["label"]) or (m["label"] != reference["label"]).any():
            raise PlotError("%s: its test images' labels differ from %s's (evaluate both on the same data and "
                            "--test-limit)" % (path, paths[0]))
        hit = m["prediction"] == m["label"]
        models.append({
            "name": run_name(path), "path": path,
            "accuracy": [float(hit[g].mean()) for g in groups],
            "macs": [float(m["macs"][g].mean()) for g in groups] if gated else None,
            "rho_difficulty": spearman(m["macs"], reference["loss"]) if gated else None,
            "rho_own_loss": spearman(m["macs"], m["loss"]) if gated else None,
            "bits": mask_information(evaluation, path, bin_of) if gated else None})
    edges = [(float(reference["loss"][g].min()), float(reference["loss"][g].max())) for g in groups]
    return edges, models


def table(edges, models):
    """Markdown: one row per bin (the reference loss range), accuracy and MACs (M) per model."""
    head = ["bin (reference loss)"] + ["%s acc" % m["name"] for m in models] + \
        ["%s MACs (M)" % m["name"] for m in models if m["macs"]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for b, (lo, hi) in enumerate(edges):
        cells = ["%d: %.3g-%.3g" % (b + 1, lo, hi)] + ["%.3f" % m["accuracy"][b] for m in models] + \
            ["%.1f" % (m["macs"][b] / 1e6) for m in models if m["macs"]]
        lines.append("| " + " | ".join(cells) + " |")
    for m in models:
        if m["macs"]:
            lines.append("\n%s: Spearman of per-image MACs with the reference loss %.3f, with its own loss %.3f; "
                         "bits per map about the difficulty bin %.4f (bins shuffled %.4f), about the label %s"
                         % (m["name"], m["rho_difficulty"], m["rho_own_loss"], m["bits"][0], m["bits"][1],
                            "n/a" if m["bits"][2] is None else "%.4f" % m["bits"][2]))
    return "\n".join(lines)


def plot(paths, output, count, title=None):
    if len(paths) < 2:
        raise PlotError("needs the reference evaluation and at least one model's")
    edges, models = summarise(paths, count)
    print(table(edges, models))
    fig, (left, right) = figure(*_SIZE, ncols=2)
    x = np.arange(1, len(edges) + 1)
    for m in models:
        line, = left.plot(x, m["accuracy"], marker="o", label=m["name"])
        if m["macs"]:
            rho = m["rho_difficulty"]
            right.plot(x, np.array(m["macs"]) / 1e6, marker="o", color=line.get_color(),
                       label=m["name"] + (" (one mask)" if rho != rho else " (Spearman %.2f)" % rho))
    left.set_ylabel("test accuracy in the bin (the reference's own: by construction)")
    right.set_ylabel("mean MACs per image in the bin (millions)")
    for ax in (left, right):
        ax.set_xlabel("difficulty bin (%s's per-image loss), easiest first" % models[0]["name"])
        ax.set_xticks(x)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title or "Accuracy and MACs by image difficulty", fontsize=11)
    fig.tight_layout()
    save(fig, output)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="plot_difficulty.py",
                                     description="Accuracy and MACs of models per difficulty bin of the test images.",
                                     epilog="example: python3 tools/plot_difficulty.py dense.json gated-p4.json "
                                            "fixed-p4.json -o difficulty.png")
    parser.add_argument("inputs", nargs="+", help="`mapgate eval --json --per-example` outputs; the first is the "
                                                  "reference whose losses define the bins")
    parser.add_argument("--bins", type=int, default=5, help="number of equal-count difficulty bins (default 5)")
    parser.add_argument("-o", "--output", required=True, help="PNG file to write (1200 x 500)")
    parser.add_argument("--title", help="plot title")
    return plot_main("plot_difficulty", parser, lambda a: plot(a.inputs, a.output, a.bins, a.title), argv)


if __name__ == "__main__":
    sys.exit(main())

"""Shared by the tools/plot_*.py scripts: matplotlib without a display, the readers of the
files mapgate writes (metrics.jsonl, `mapgate eval --json`), errors naming the file, and a
main() that turns them into one line on stderr and an exit code (1 runtime, 2 usage).
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")  # no display: PNG files only
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

DPI = 100  # figure sizes are given in pixels; inches = pixels / DPI


class PlotError(Exception):
    """A file that cannot be plotted; the message names the file and what is wrong."""


def read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise PlotError("%s: cannot read (%s)" % (path, e.strerror or e))
    except ValueError as e:
        raise PlotError("%s: not valid JSON (%s)" % (path, e))


def metrics_file(path):
    """metrics.jsonl of a run directory, or path itself when it names a file."""
    return os.path.join(path, "metrics.jsonl") if os.path.isdir(path) else path


def read_metrics(path):
    """The epoch lines of a run directory's (or a file's) metrics.jsonl, in epoch order; a
    later line for the same epoch (a resumed run) replaces an earlier one."""
    path = metrics_file(path)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise PlotError("%s: cannot read (%s); expected a run directory or its metrics.jsonl"
                        % (path, e.strerror or e))
    epochs = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            raise PlotError("%s: line %d is not valid JSON (%s)" % (path, number, e))
        if not isinstance(row, dict) or not isinstance(row.get("epoch"), int):
            raise PlotError('%s: line %d has no integer "epoch"' % (path, number))
        epochs[row["epoch"]] = row
    if not epochs:
        raise PlotError("%s: no epoch lines (has the run finished an epoch?)" % path)
    return [epochs[e] for e in sorted(epochs)]


def run_name(path):
    """A short label for a run directory, a metrics.jsonl or a JSON file."""
    path = os.path.abspath(path)
    if os.path.basename(path) == "metrics.jsonl":
        path = os.path.dirname(path)
    stem, ext = os.path.splitext(os.path.basename(path))
    return stem if ext in (".json", ".jsonl") else os.path.basename(path)


def figure(width, height, **subplots):
    """A figure of width x height pixels and its axes (plt.subplots' keywords)."""
    return plt.subplots(figsize=(width / DPI, height / DPI), dpi=DPI, **subplots)


def save(fig, output):
    """Writes the figure at its own size (no bbox cropping, so the pixel size is exact)."""
    try:
        fig.savefig(output, dpi=DPI)
    finally:
        plt.close(fig)


def main(prog, parser, draw, argv=None):
    """Parses argv with parser (which has --output), calls draw(args), reports errors."""
    args = parser.parse_args(argv)
    try:
        draw(args)
    except PlotError as e:
        print("%s: %s" % (prog, e), file=sys.stderr)
        return 1
    except OSError as e:
        print("%s: %s: cannot write (%s)" % (prog, args.output, e.strerror or e), file=sys.stderr)
        return 1
    print("wrote %s" % args.output, file=sys.stderr)
    return 0

"""Shared by the tools/plot_*.py scripts: matplotlib without a display, figures of an exact
pixel size, and a main() that turns an error into one line on stderr and an exit code
(1 runtime, 2 usage). The readers of mapgate's files are in mapgate_files.py.
"""
import sys

import matplotlib

matplotlib.use("Agg")  # no display: PNG files only
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

from mapgate_files import PlotError  # noqa: E402,F401  (re-exported: the scripts' one error type)

DPI = 100  # figure sizes are given in pixels; inches = pixels / DPI


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

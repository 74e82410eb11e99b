"""Readers of the files mapgate and tools/compare.py write, for the pictures: metrics.jsonl of a
run directory, `mapgate eval --json` output, compare.py's results.json. Errors are PlotError,
one line naming the file and what is wrong. No matplotlib here.
"""
import json
import os


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
    """The evaluation of one model: `mapgate eval --json` output, an object {"eval": EVAL, ..},
    the arm arm_name of compare.py's results.json, or a run directory's last epoch (its test_*
    keys renamed as eval names them)."""
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


def run_name(path):
    """A short label for a run directory, a metrics.jsonl or a JSON file."""
    path = os.path.abspath(path)
    if os.path.basename(path) == "metrics.jsonl":
        path = os.path.dirname(path)
    stem, ext = os.path.splitext(os.path.basename(path))
    return stem if ext in (".json", ".jsonl") else os.path.basename(path)


PER_EXAMPLE_DOC = "written by `mapgate eval --json --per-example`; format in docs/pictures.md"
_COLUMNS = {  # key: (check, what is expected)
    "label": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "a class index"),
    "prediction": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "a class index"),
    "macs": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0, "a MAC count"),
    "loss": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0, "a cross-entropy"),
    "confidence": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1,
                   "a probability"),
    "mask": (lambda v: isinstance(v, str) and v != "" and set(v) <= {"0", "1"}, 'a string of "0" and "1"'),
}


def per_example(evaluation, where, keys):
    """The columns `keys` of an evaluation's "per_example" object: label and prediction (class
    indices), loss and macs (per image), mask (one character per gated map, layer after layer, "1" kept),
    each a list with one entry per test image. PlotError naming `where` on anything else."""
    columns = evaluation.get("per_example")
    if not isinstance(columns, dict):
        raise PlotError('%s: no "per_example" (%s)' % (where, PER_EXAMPLE_DOC))
    out = {}
    for key in keys:
        column = columns.get(key)
        if not isinstance(column, list) or not column:
            raise PlotError('%s: per_example has no "%s" list (%s)' % (where, key, PER_EXAMPLE_DOC))
        if out and len(column) != len(out[keys[0]]):
            raise PlotError("%s: per_example.%s has %d entries but per_example.%s has %d"
                            % (where, key, len(column), keys[0], len(out[keys[0]])))
        check, expected = _COLUMNS[key]
        for i, value in enumerate(column):
            if not check(value):
                raise PlotError("%s: per_example.%s[%d] is %s; expected %s"
                                % (where, key, i, json.dumps(value)[:40], expected))
        out[key] = column
    if "mask" in out and len({len(m) for m in out["mask"]}) > 1:
        raise PlotError("%s: per_example.mask has masks of different lengths" % where)
    return out

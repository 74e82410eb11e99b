#!/usr/bin/env python3
"""Equal-MACs comparison of gated training against its baselines, from one JSON config.

Usage:
    python3 tools/compare.py CONFIG.json [--mapgate ./build/mapgate] [--dry-run]
                             [--only ARM] [--re-eval]

Runs, one training process at a time, every arm the config asks for (docs/design.md §4):
  dense      the reference run itself (evaluated, not trained)
  gated-pL   REINFORCE gates at penalty L, fine-tuned from the reference (--init), or, with
             gated.warmup_epochs, trained from scratch: W dense epochs, then gated
  static-pL  the same with the gate weights frozen (input-independent masks), same budget
  random-pL  random masks at the per-layer kept rates of gated-pL (at random.tau), same budget
  fixed-pL   one fixed mask (--gates fixed --fixed-maps BITS) at gated-pL's MACs, same budget:
             per layer, the round(per_layer_active * growth) maps gated-pL turns on most often
  thin-kG    a dense DenseNet of growth rate G trained from scratch

Each arm trains into OUT/ARM/ (config.json, metrics.jsonl, checkpoint.pt), is evaluated
with `mapgate eval --json` (gated and static arms also with --thresholds over the config's
taus; random and fixed masks do not depend on a threshold) and `mapgate flops --json`, and
goes into OUT/results.json, rewritten after every arm. Re-running continues unfinished arms
(--resume) and skips finished ones (metrics.jsonl has a line with "epoch" equal to the arm's
epochs); evaluations are cached in OUT/ARM/compare-eval.json until the checkpoint changes.
Plot with tools/plot_tradeoff.py.

Random and fixed arms take their masks from their source gated arm's evaluation, so they run
after it (with --only, evaluate the source first). The fixed arm's BITS are one 0/1 per
gated map (gated layers x growth, layer-major, as eval's input_dependence.map_on_rate lists
them): layer l, of growth k = len(map_on_rate) / len(per_layer_active), keeps
n_l = round(per_layer_active[l] * k) maps (halves round up), those of highest on-rate, ties
to the lower index. per_layer_active is taken at fixed.tau (from the curve, as for random),
but the on-rates always come from the source's main eval (eval --json, mapgate's default
threshold): at another tau only the counts n_l follow tau, not the ranking of the maps. A
source evaluated by a mapgate too old to give map_on_rate stops the fixed arm: re-evaluate
the source with a newer mapgate (--only gated-pL --re-eval). On a machine without the
source's run, --sources FILE takes its evaluation from a results file that recorded it
(e.g. the committed docs/results/NAME.json), if the source's train command there is the
one this config gives; a source evaluated here wins.

Options:
    --mapgate PATH   the mapgate binary (default ./build/mapgate)
    --dry-run        print the commands, run nothing
    --only ARM       run (train if needed, evaluate) this arm only, e.g. gated-p4
    --re-eval        evaluate again even where a cached evaluation is valid
    --sources FILE   a results file to take random and fixed arms' source evaluations
                     from when the source arm has no evaluation here

Config (JSON; every key checked, unknown keys refused, "comment" allowed anywhere;
example: tools/compare-cifar10-smoke.json):
  name        str   title of the comparison (results.json, plots)
  dataset     str   --dataset of every run
  out         str   output directory, relative to the current directory
  reference   str   a dense run: the dense arm, and --init of the gated-family arms (unless
                    gated.warmup_epochs makes them train from scratch)
  taus        [num] thresholds of the accuracy/MACs curves of gated and static arms
  common      {depth, threads, seed; optional: growth (12), train_limit, test_limit, batch,
               flags}: given to every train command (test_limit and threads also to eval)
  gated       {epochs, penalties; optional: lr, schedule, bn_recal, warmup_epochs, flags}:
               the budget of every gated-family arm (gated, static, random, fixed). With
               warmup_epochs W they start from random weights instead of --init reference:
               --warmup-epochs W, epochs in all (W dense, then epochs - W under their masks)
  static      optional {penalties; optional: flags}: gated budget, --gate-weights frozen
  random      optional {from_penalty (one of gated.penalties); optional: tau (0.5), flags}:
               with gated.flags "core-maps" K, give the random arm {"core-maps": K} too (its
               rates are then whole layers', core included, as per_layer_active gives them)
  fixed       optional {from_penalty (one of gated.penalties); optional: tau (0.5), flags}
  thin        optional {growths; optional: epochs (default: the reference's epochs plus
               gated.epochs, or gated.epochs alone with gated.warmup_epochs), lr, schedule,
               train_limit (replaces common.train_limit, 0: all images: a reference trained on every image gives the thin arm its budget), flags}
  "flags" objects add mapgate flags: {"gate-lr": 0.01, "no-augment": true}; flags the
  tool sets itself (--out, --penalty, --gates, ...) are refused there.

mapgate finds its data through $MAPGATE_DATA or its per-user cache (README.md, "Data").
Exit status: 0 done, 2 bad config or usage, 1 other errors, else the failing mapgate's own.
"""
import argparse
import json
import math
import os
import shlex
import subprocess
import sys

# Flags the tool sets itself: a "flags" section may not set them.
_RESERVED = {
    "dataset", "out", "depth", "growth", "epochs", "threads", "seed", "lr", "schedule",
    "batch", "train-limit", "test-limit", "init", "resume", "bn-recal", "gates", "penalty",
    "gate-weights", "random-keep", "fixed-maps", "warmup-epochs",
}
# Flags a resumed mapgate run may change (trainer.cpp, check_resume_settings).
_FREE_ON_RESUME = {"--epochs", "--threads", "--test-limit"}
KINDS = ("dense", "gated", "static", "random", "fixed", "thin")
COMMAND_FILE = "compare-command.json"
EVAL_FILE = "compare-eval.json"
# Kept rates passed to --gates random must lie strictly inside (eps, 1 - eps), eps being
# --p-clamp (train_config.cpp); rates are moved this far inside.
_DEFAULT_P_CLAMP = 0.01
_KEEP_MARGIN = 0.001


class ConfigError(Exception):
    """A bad config file or command-line use (exit 2)."""


class ToolError(Exception):
    """A runtime error that is not a mapgate failure (exit 1)."""


class MapgateFailed(Exception):
    """A mapgate command exited non-zero; returncode is its exit status."""

    def __init__(self, command, returncode):
        super().__init__(command)
        self.command = command
        self.returncode = returncode


# ---------------------------------------------------------------------------- config

class _Section:
    """Typed, checked access to one JSON object of the config; names keys as a.b.c."""

    def __init__(self, file, obj, prefix=""):
        self.file, self.obj, self.prefix, self.used = file, obj, prefix, {"comment"}

    def _name(self, key):
        return self.prefix + key

    def fail(self, key, message):
        raise ConfigError('%s: "%s" %s' % (self.file, self._name(key), message))

    def get(self, key, kind, default=None, required=True, check=None, rule=""):
        self.used.add(key)
        if key not in self.obj:
            if required:
                raise ConfigError('%s: missing key "%s"' % (self.file, self._name(key)))
            return default
        value = self.obj[key]
        expected = {
            "int": "an integer", "number": "a number", "str": "a non-empty string",
            "object": "an object", "numbers": "a non-empty list of numbers",
            "ints": "a non-empty list of integers",
        }[kind]

        def is_int(v):
            return isinstance(v, int) and not isinstance(v, bool)

        def is_num(v):
            return isinstance(v, (int, float)) and not isinstance(v, bool)

        ok = {
            "int": lambda v: is_int(v),
            "number": lambda v: is_num(v),
            "str": lambda v: isinstance(v, str) and v != "",
            "object": lambda v: isinstance(v, dict),
            "numbers": lambda v: isinstance(v, list) and v != [] and all(is_num(x) for x in v),
            "ints": lambda v: isinstance(v, list) and v != [] and all(is_int(x) for x in v),
        }[kind](value)
        if not ok:
            self.fail(key, "is %s; expected %s" % (json.dumps(value), expected))
        if check is not None:
            items = value if isinstance(value, list) else [value]
            for item in items:
                if not check(item):
                    self.fail(key, "has %s; expected %s" % (json.dumps(item), rule))
            if isinstance(value, list) and len(set(value)) != len(value):
                self.fail(key, "is %s; expected no repeated values" % json.dumps(value))
        return value

    def section(self, key, required=True):
        obj = self.get(key, "object", required=required)
        return None if obj is None else _Section(self.file, obj, self._name(key) + ".")

    def flags(self):
        """The optional "flags" object: extra mapgate flags, {"gate-lr": 0.01, "bc": true}."""
        obj = self.get("flags", "object", default={}, required=False)
        args = []
        for name, value in obj.items():
            flag = name[2:] if name.startswith("--") else name
            where = '%s: "%sflags.%s"' % (self.file, self.prefix, name)
            if flag in _RESERVED:
                raise ConfigError("%s: --%s is set by the tool from its own keys; remove it" % (where, flag))
            if not flag or not all(c.isalnum() or c == "-" for c in flag):
                raise ConfigError("%s: not a flag name; expected e.g. \"gate-lr\"" % where)
            if value is True:
                args.append("--" + flag)
            elif value is False:
                continue
            elif isinstance(value, (int, float, str)):
                args += ["--" + flag, fmt_num(value) if not isinstance(value, str) else value]
            else:
                raise ConfigError("%s: is %s; expected a number, a string or true/false"
                                  % (where, json.dumps(value)))
        return args

    def done(self):
        unknown = sorted(set(self.obj) - self.used)
        if unknown:
            raise ConfigError('%s: unknown key "%s"; expected one of %s' % (
                self.file, self._name(unknown[0]), ", ".join(sorted(self.used - {"comment"}))))


def fmt_num(x):
    """A number as mapgate's command line and the arm names show it: 4, 0.5, 1e-05."""
    if isinstance(x, int) and not isinstance(x, bool):
        return str(x)
    x = float(x)
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


def _positive(x):
    return x > 0


def _non_negative(x):
    return x >= 0


def load_config(path):
    """Reads and checks a comparison config; returns a plain dict with defaults filled in."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError("%s: cannot read (%s)" % (path, e.strerror or e))
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError("%s: not valid JSON: line %d column %d: %s" % (path, e.lineno, e.colno, e.msg))
    if not isinstance(obj, dict):
        raise ConfigError("%s: expected a JSON object at the top level" % path)
    top = _Section(path, obj)
    cfg = {
        "file": path,
        "name": top.get("name", "str"),
        "dataset": top.get("dataset", "str"),
        "out": top.get("out", "str"),
        "reference": top.get("reference", "str"),
        "taus": top.get("taus", "numbers", check=lambda t: 0 <= t <= 1, rule="0 <= tau <= 1"),
    }
    common = top.section("common")
    cfg["common"] = {
        "depth": common.get("depth", "int", check=_positive, rule="> 0"),
        "growth": common.get("growth", "int", default=12, required=False, check=_positive, rule="> 0"),
        "threads": common.get("threads", "int", check=_positive, rule="> 0"),
        "seed": common.get("seed", "int", check=_non_negative, rule=">= 0"),
        "train_limit": common.get("train_limit", "int", required=False, check=_non_negative, rule=">= 0"),
        "test_limit": common.get("test_limit", "int", required=False, check=_non_negative, rule=">= 0"),
        "batch": common.get("batch", "int", required=False, check=_positive, rule="> 0"),
        "flags": common.flags(),
    }
    common.done()

    gated = top.section("gated")
    cfg["gated"] = {
        "epochs": gated.get("epochs", "int", check=_positive, rule="> 0"),
        "lr": gated.get("lr", "number", required=False, check=_positive, rule="> 0"),
        "schedule": gated.get("schedule", "str", required=False),
        "bn_recal": gated.get("bn_recal", "int", required=False, check=_non_negative, rule=">= 0"),
        "penalties": gated.get("penalties", "numbers", check=_non_negative, rule=">= 0"),
        "warmup_epochs": gated.get("warmup_epochs", "int", required=False, check=_non_negative, rule=">= 0"),
        "flags": gated.flags(),
    }
    gated.done()
    warmup = cfg["gated"]["warmup_epochs"]
    if warmup is not None and warmup >= cfg["gated"]["epochs"]:
        raise ConfigError('%s: "gated.warmup_epochs" is %d: expected fewer than gated.epochs (%d), '
                          'or no epoch is gated' % (path, warmup, cfg["gated"]["epochs"]))

    static = top.section("static", required=False)
    if static is not None:
        cfg["static"] = {
            "penalties": static.get("penalties", "numbers", check=_non_negative, rule=">= 0"),
            "flags": static.flags(),
        }
        static.done()

    for kind in ("random", "fixed"):
        # Both take their masks from one gated arm's evaluation: the same keys and checks.
        section = top.section(kind, required=False)
        if section is None:
            continue
        penalties = cfg["gated"]["penalties"]
        rule = "one of gated.penalties (%s)" % ", ".join(fmt_num(p) for p in penalties)
        cfg[kind] = {
            "from_penalty": section.get("from_penalty", "number", check=lambda p: p in penalties, rule=rule),
            "tau": section.get("tau", "number", default=0.5, required=False,
                               check=lambda t: 0 <= t <= 1, rule="0 <= tau <= 1"),
            "flags": section.flags(),
        }
        section.done()

    thin = top.section("thin", required=False)
    if thin is not None:
        cfg["thin"] = {
            "growths": thin.get("growths", "ints", check=_positive, rule="> 0"),
            "epochs": thin.get("epochs", "int", required=False, check=_positive, rule="> 0"),
            "lr": thin.get("lr", "number", required=False, check=_positive, rule="> 0"),
            "schedule": thin.get("schedule", "str", required=False),
            "train_limit": thin.get("train_limit", "int", required=False, check=_non_negative, rule=">= 0"),
            "flags": thin.flags(),
        }
        thin.done()
        if cfg["thin"]["epochs"] is None and warmup is not None:
            cfg["thin"]["epochs"] = cfg["gated"]["epochs"]  # both from scratch: the same epochs
        elif cfg["thin"]["epochs"] is None:
            # The same budget as a gated arm: the reference's epochs plus the gated ones.
            ref_config = os.path.join(cfg["reference"], "config.json")
            try:
                with open(ref_config, encoding="utf-8") as f:
                    ref_epochs = json.load(f)["epochs"]
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise ConfigError('%s: "thin.epochs" is not given and %s gives no "epochs" (%s); '
                                  'set thin.epochs' % (path, ref_config, e))
            cfg["thin"]["epochs"] = int(ref_epochs) + cfg["gated"]["epochs"]
    top.done()
    return cfg


# ---------------------------------------------------------------------------- arms

class Arm:
    """One row of the comparison: what to train (train_args, without the binary) and
    how to evaluate it. model is the run evaluated (run_dir, or the reference for dense)."""

    def __init__(self, name, kind, run_dir, model, epochs=None, train_args=None,
                 curve=False, source=None):
        self.name, self.kind, self.run_dir, self.model = name, kind, run_dir, model
        self.epochs, self.train_args, self.curve, self.source = epochs, train_args, curve, source

    def __repr__(self):
        return "Arm(%s)" % self.name


# Stand in train_args of a random arm for the kept rates, and of a fixed arm for its map
# bits, known once their source is evaluated.
KEEP_PLACEHOLDER = "<random-keep>"
MAPS_PLACEHOLDER = "<fixed-maps>"


def _common_train_args(cfg, out, growth, epochs, lr, schedule, train_limit=None):
    """train_limit, when given, replaces common.train_limit (0: every training image)."""
    c = cfg["common"]
    if train_limit is None:
        train_limit = c["train_limit"]
    args = ["train", "--dataset", cfg["dataset"], "--out", out, "--depth", str(c["depth"]),
            "--growth", str(growth), "--epochs", str(epochs), "--threads", str(c["threads"]),
            "--seed", str(c["seed"])]
    if lr is not None:
        args += ["--lr", fmt_num(lr)]
    if schedule is not None:
        args += ["--schedule", schedule]
    if c["batch"] is not None:
        args += ["--batch", str(c["batch"])]
    if train_limit is not None:
        args += ["--train-limit", str(train_limit)]
    if c["test_limit"] is not None:
        args += ["--test-limit", str(c["test_limit"])]
    return args + c["flags"]


def _finetune_args(cfg, out):
    """The budget every gated-family arm shares: gated epochs, lr, schedule, BN recal, and
    --init reference, or --warmup-epochs W from scratch."""
    g = cfg["gated"]
    args = _common_train_args(cfg, out, cfg["common"]["growth"], g["epochs"], g["lr"], g["schedule"])
    if g["warmup_epochs"] is None:
        args += ["--init", cfg["reference"]]
    else:
        args += ["--warmup-epochs", str(g["warmup_epochs"])]
    if g["bn_recal"] is not None:
        args += ["--bn-recal", str(g["bn_recal"])]
    return args


def plan_arms(cfg):
    """Every arm of the config, in the order they run: dense, gated, static, random, fixed, thin."""
    out = cfg["out"]
    g = cfg["gated"]
    arms = [Arm("dense", "dense", os.path.join(out, "dense"), cfg["reference"])]
    for p in g["penalties"]:
        name = "gated-p" + fmt_num(p)
        run = os.path.join(out, name)
        args = _finetune_args(cfg, run) + ["--gates", "reinforce", "--penalty", fmt_num(p)] + g["flags"]
        arms.append(Arm(name, "gated", run, run, g["epochs"], args, curve=True))
    if "static" in cfg:
        for p in cfg["static"]["penalties"]:
            name = "static-p" + fmt_num(p)
            run = os.path.join(out, name)
            args = (_finetune_args(cfg, run) + ["--gates", "reinforce", "--penalty", fmt_num(p)] + g["flags"]
                    + ["--gate-weights", "frozen"] + cfg["static"]["flags"])
            arms.append(Arm(name, "static", run, run, g["epochs"], args, curve=True))
    if "random" in cfg:
        r = cfg["random"]
        name = "random-p" + fmt_num(r["from_penalty"])
        run = os.path.join(out, name)
        args = _finetune_args(cfg, run) + ["--gates", "random", "--random-keep", KEEP_PLACEHOLDER] + r["flags"]
        arms.append(Arm(name, "random", run, run, g["epochs"], args,
                        source="gated-p" + fmt_num(r["from_penalty"])))
    if "fixed" in cfg:
        fx = cfg["fixed"]
        name = "fixed-p" + fmt_num(fx["from_penalty"])
        run = os.path.join(out, name)
        args = _finetune_args(cfg, run) + ["--gates", "fixed", "--fixed-maps", MAPS_PLACEHOLDER] + fx["flags"]
        arms.append(Arm(name, "fixed", run, run, g["epochs"], args,
                        source="gated-p" + fmt_num(fx["from_penalty"])))
    if "thin" in cfg:
        t = cfg["thin"]
        for k in t["growths"]:
            name = "thin-k%d" % k
            run = os.path.join(out, name)
            args = _common_train_args(cfg, run, k, t["epochs"], t["lr"], t["schedule"], t["train_limit"]) + t["flags"]
            arms.append(Arm(name, "thin", run, run, t["epochs"], args))
    return arms


def eval_commands(cfg, arm):
    """The mapgate commands (without the binary) that evaluate an arm, in order:
    eval --json, then eval --thresholds (gated and static), then flops."""
    c = cfg["common"]
    tail = ["--json", "--threads", str(c["threads"])]
    if c["test_limit"] is not None:
        tail += ["--test-limit", str(c["test_limit"])]
    cmds = [["eval", "--model", arm.model] + tail]
    if arm.curve:
        taus = ",".join(fmt_num(t) for t in cfg["taus"])
        cmds.append(["eval", "--model", arm.model, "--thresholds", taus] + tail)
    cmds.append(["flops", "--model", arm.model, "--json"])
    return cmds


def keep_rates(per_layer_active, p_clamp=_DEFAULT_P_CLAMP):
    """--random-keep text from a gated eval's per_layer_active: mapgate takes rates strictly
    inside (eps, 1 - eps), eps = --p-clamp, so each is clamped to [eps + 0.001, 1 - eps - 0.001]
    (a layer that kept all its maps, 1.0, becomes 0.989 at the default eps 0.01)."""
    low, high = p_clamp + _KEEP_MARGIN, 1 - p_clamp - _KEEP_MARGIN
    rates = []
    for a in per_layer_active:
        r = min(max(float(a), low), high)
        rates.append(("%.4f" % r).rstrip("0").rstrip("."))
    return ",".join(rates)


def p_clamp_of(args):
    """The --p-clamp an arm's train command gives (through a "flags" object), else mapgate's default."""
    if "--p-clamp" in args[:-1]:
        try:
            return float(args[args.index("--p-clamp") + 1])
        except ValueError:
            pass
    return _DEFAULT_P_CLAMP


def source_layer_rates(evaluation, tau, source):
    """per_layer_active of a gated arm at tau: from its curve, else from its own eval."""
    for point in evaluation.get("curve") or []:
        if abs(point.get("threshold", -1) - tau) < 1e-9 and "per_layer_active" in point:
            return point["per_layer_active"]
    single = evaluation.get("eval") or {}
    if abs(single.get("threshold", -1) - tau) < 1e-9 and "per_layer_active" in single:
        return single["per_layer_active"]
    raise ToolError("%s: its evaluation has no per_layer_active at tau %s (add %s to \"taus\")"
                    % (source, fmt_num(tau), fmt_num(tau)))


def _brief(value):
    """A JSON value for an error message: a list as its length, else shortened."""
    if isinstance(value, list):
        return "(a list of %d)" % len(value)
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def fixed_map_bits(evaluation, tau, source, arm_name):
    """--fixed-maps text from a gated arm's evaluation: one 0/1 per gated map, layer-major.
    Layer l (growth k = len(map_on_rate) / len(per_layer_active)) keeps its
    n_l = round(per_layer_active[l] * k) maps of highest on-rate (halves round up, ties go to
    the lower index). per_layer_active is taken at tau (source_layer_rates); the on-rates are
    those of the main eval (input_dependence.map_on_rate) whatever tau is."""
    single = evaluation.get("eval") or {}
    on_rates = (single.get("input_dependence") or {}).get("map_on_rate")
    if on_rates is None:
        raise ToolError("%s: the evaluation of %s has no input_dependence.map_on_rate (a mapgate too old "
                        "to give per-map on-rates evaluated it); re-evaluate %s with a newer mapgate: "
                        "tools/compare.py CONFIG --only %s --re-eval" % (arm_name, source, source, source))
    active = source_layer_rates(evaluation, tau, source)

    def numbers(v):
        return isinstance(v, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)

    if not (numbers(on_rates) and numbers(active) and active and on_rates
            and len(on_rates) % len(active) == 0):
        raise ToolError("%s: the evaluation of %s gives map_on_rate %s for per_layer_active %s at tau %s; "
                        "expected lists of numbers, layers x growth on-rates for one rate per layer"
                        % (arm_name, source, _brief(on_rates), _brief(active), fmt_num(tau)))
    k = len(on_rates) // len(active)
    bits = []
    for layer, fraction in enumerate(active):
        rates = on_rates[layer * k:(layer + 1) * k]
        n = min(max(int(math.floor(float(fraction) * k + 0.5)), 0), k)
        kept = set(sorted(range(k), key=lambda j: (-rates[j], j))[:n])
        bits += ["1" if j in kept else "0" for j in range(k)]
    return ",".join(bits)


def recorded_evaluation(path, source):
    """The evaluation of arm `source` as a results file recorded it ({"eval", "curve",
    "flops"}), after checking that it was trained by the command this config gives it."""
    try:
        with open(path, encoding="utf-8") as f:
            results = json.load(f)
    except (OSError, ValueError) as e:
        raise ToolError("--sources %s: cannot read a results file (%s)" % (path, e))
    arms = results.get("arms") if isinstance(results, dict) else None
    entry = next((a for a in arms or [] if isinstance(a, dict) and a.get("name") == source.name), None)
    if entry is None or not all(k in entry for k in ("eval", "curve", "flops", "command")):
        raise ToolError("--sources %s: no recorded evaluation of %s" % (path, source.name))
    expected = command_string(source.train_args)
    if entry["command"] != expected:
        raise ToolError("--sources %s: %s was trained by\n  %s\nnot by this config's\n  %s"
                        % (path, source.name, entry["command"], expected))
    return {"eval": entry["eval"], "curve": entry["curve"], "flops": entry["flops"]}


def resolve_train_args(arm, text):
    """train_args with the random arm's kept rates, or the fixed arm's map bits, put in."""
    return [text if a in (KEEP_PLACEHOLDER, MAPS_PLACEHOLDER) else a for a in arm.train_args]


def command_string(args, binary="mapgate"):
    return shlex.join([binary] + list(args))


# ---------------------------------------------------------------------------- run state

def run_state(run_dir, epochs):
    """'finished' if metrics.jsonl has a line with "epoch" == epochs, else 'partial' if
    checkpoint.pt exists (train must be called with --resume), else 'new'."""
    try:
        with open(os.path.join(run_dir, "metrics.jsonl"), encoding="utf-8") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a killed write
                if isinstance(record, dict) and record.get("epoch") == epochs:
                    return "finished"
    except OSError:
        pass
    if os.path.exists(os.path.join(run_dir, "checkpoint.pt")):
        return "partial"
    return "new"


def train_argv(arm, args, state):
    """The train command to run for a state (None when finished): --resume on a partial run."""
    if state == "finished":
        return None
    return list(args) + (["--resume"] if state == "partial" else [])


def _without_free_flags(args):
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a in _FREE_ON_RESUME:
            skip = True
        else:
            out.append(a)
    return out


def check_recorded_command(run_dir, args):
    """A run directory made by another command (other than the flags a resume may change)
    is not this arm: refuse it rather than report it under this arm's name."""
    path = os.path.join(run_dir, COMMAND_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            old = json.load(f)["args"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    if _without_free_flags(old) != _without_free_flags(args):
        raise ToolError("%s was trained by another command:\n  was: %s\n  now: %s\n"
                        "remove the directory, or change \"out\" in the config"
                        % (run_dir, command_string(old), command_string(args)))


def _write_json(path, obj):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def _checkpoint_mtime(model):
    path = os.path.join(model, "checkpoint.pt") if os.path.isdir(model) else model
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def load_eval_cache(arm, commands):
    """The cached evaluation of an arm if it was made by these commands from the current checkpoint."""
    try:
        with open(os.path.join(arm.run_dir, EVAL_FILE), encoding="utf-8") as f:
            cache = json.load(f)
    except (OSError, ValueError):
        return None
    if (not isinstance(cache, dict) or cache.get("commands") != [command_string(c) for c in commands]
            or cache.get("checkpoint_mtime_ns") != _checkpoint_mtime(arm.model)):
        return None
    return cache


# ---------------------------------------------------------------------------- running

def log(message):
    print(message, file=sys.stderr, flush=True)


def run_mapgate(binary, args, capture):
    """Runs mapgate; its stderr always streams through. capture: return its stdout, else
    send its stdout to our stderr. Raises MapgateFailed on a non-zero exit."""
    argv = [binary] + list(args)
    sys.stderr.flush()
    try:
        done = subprocess.run(argv, stdout=subprocess.PIPE if capture else sys.stderr,
                              universal_newlines=True)
    except OSError as e:
        raise ToolError("%s: cannot run (%s); build it, or pass --mapgate PATH" % (binary, e.strerror or e))
    if done.returncode != 0:
        raise MapgateFailed(shlex.join(argv), done.returncode)
    return done.stdout


def _parse_json(text, command):
    try:
        return json.loads(text)
    except ValueError as e:
        raise ToolError("%s: printed no JSON (%s)" % (command, e))


def summarize(arm, evaluation):
    """macs_mean and accuracy of an arm from its evaluation: a model without gates (dense,
    thin) has no macs_mean in eval, so its MACs come from flops."""
    single = evaluation["eval"]
    macs = single.get("macs_mean")
    if macs is None:
        if arm.kind not in ("dense", "thin"):
            log("compare: %s: eval gave no macs_mean; using the dense MACs of flops" % arm.name)
        macs = evaluation["flops"]["macs"]
    return macs, single.get("accuracy")


class Comparison:
    def __init__(self, cfg, binary, dry_run=False, re_eval=False, sources=None):
        self.cfg, self.binary, self.dry_run, self.re_eval = cfg, binary, dry_run, re_eval
        self.sources = sources  # path of a results file with source arms' evaluations, or None
        self.arms = plan_arms(cfg)
        self.evaluations = {}  # arm name -> {"eval", "curve", "flops", ...}
        self.results_path = os.path.join(cfg["out"], "results.json")

    def arm(self, name):
        for a in self.arms:
            if a.name == name:
                return a
        raise ConfigError("--only %s: no such arm; this config has %s"
                          % (name, ", ".join(a.name for a in self.arms)))

    def _source_evaluation(self, arm):
        name = arm.source
        if name in self.evaluations:
            return self.evaluations[name]
        source = self.arm(name)
        cache = load_eval_cache(source, eval_commands(self.cfg, source))
        if cache is None and self.sources is not None:
            cache = recorded_evaluation(self.sources, source)
            log("compare: %s takes the evaluation of %s recorded in %s" % (arm.name, name, self.sources))
        if cache is None and not self.dry_run:
            raise ToolError("%s needs the evaluation of %s at tau %s: run it first "
                            "(tools/compare.py CONFIG --only %s)" % (arm.name, name,
                                                                  fmt_num(self.cfg[arm.kind]["tau"]), name))
        return cache

    def train_args(self, arm):
        """The arm's train command (without binary); for random its kept rates resolved, for
        fixed its map bits, or either left as a placeholder in a dry run before its source
        is evaluated."""
        if arm.kind not in ("random", "fixed"):
            return arm.train_args
        tau = self.cfg[arm.kind]["tau"]
        source = self._source_evaluation(arm)
        if source is None and arm.kind == "random":
            text = "<per_layer_active of %s at tau %s>" % (arm.source, fmt_num(tau))
        elif source is None:
            text = "<maps most often on in %s, per_layer_active at tau %s>" % (arm.source, fmt_num(tau))
        elif arm.kind == "random":
            text = keep_rates(source_layer_rates(source, tau, arm.source), p_clamp_of(arm.train_args))
        else:
            text = fixed_map_bits(source, tau, arm.source, arm.name)
        return resolve_train_args(arm, text)

    def run(self, only=None):
        arms = self.arms if only is None else [self.arm(only)]
        n = len(self.arms)
        for arm in arms:
            index = self.arms.index(arm) + 1
            tag = "[%d/%d]" % (index, n)
            if self.dry_run:
                self._dry_run(arm, tag)
                continue
            args = self.train_args(arm) if arm.kind != "dense" else None
            if args is not None:
                self._train(arm, args, tag)
            evaluation = self._evaluate(arm, tag)
            self.evaluations[arm.name] = evaluation
            macs, accuracy = summarize(arm, evaluation)
            log("%s %s: accuracy %.4f, %.1f M MACs" % (tag, arm.name, accuracy, macs / 1e6))
            self._record(arm, args, evaluation)
        if not self.dry_run:
            log("results: %s" % self.results_path)

    def _dry_run(self, arm, tag):
        print("# %s %s (%s)" % (tag, arm.name, arm.kind))
        if arm.kind != "dense":
            argv = train_argv(arm, self.train_args(arm), run_state(arm.run_dir, arm.epochs))
            if argv is None:
                print("# already trained (%d epochs): no training" % arm.epochs)
            else:
                print(command_string(argv, self.binary))
        for cmd in eval_commands(self.cfg, arm):
            print(command_string(cmd, self.binary))

    def _train(self, arm, args, tag):
        check_recorded_command(arm.run_dir, args)
        state = run_state(arm.run_dir, arm.epochs)
        argv = train_argv(arm, args, state)
        if argv is None:
            log("%s %s: already trained (%d epochs), skipping training" % (tag, arm.name, arm.epochs))
            return
        verb = "resuming" if state == "partial" else "training"
        log("%s %s %s ..." % (tag, verb, arm.name))
        log("  " + command_string(argv, self.binary))
        os.makedirs(arm.run_dir, exist_ok=True)
        _write_json(os.path.join(arm.run_dir, COMMAND_FILE), {"command": command_string(args), "args": args})
        run_mapgate(self.binary, argv, capture=False)
        if run_state(arm.run_dir, arm.epochs) != "finished":
            raise ToolError("%s: training ended without a metrics.jsonl line for epoch %d"
                            % (arm.run_dir, arm.epochs))

    def _evaluate(self, arm, tag):
        commands = eval_commands(self.cfg, arm)
        cache = None if self.re_eval else load_eval_cache(arm, commands)
        if cache is not None:
            log("%s %s: evaluation cached in %s" % (tag, arm.name, os.path.join(arm.run_dir, EVAL_FILE)))
            return cache
        log("%s evaluating %s ..." % (tag, arm.name))
        mtime = _checkpoint_mtime(arm.model)
        outputs = []
        for cmd in commands:
            log("  " + command_string(cmd, self.binary))
            outputs.append(_parse_json(run_mapgate(self.binary, cmd, capture=True), command_string(cmd)))
        evaluation = {
            "commands": [command_string(c) for c in commands],
            "checkpoint_mtime_ns": mtime,
            "eval": outputs[0],
            "curve": outputs[1]["curve"] if arm.curve else None,
            "flops": outputs[-1],
        }
        os.makedirs(arm.run_dir, exist_ok=True)
        _write_json(os.path.join(arm.run_dir, EVAL_FILE), evaluation)
        return evaluation

    def _record(self, arm, args, evaluation):
        macs, accuracy = summarize(arm, evaluation)
        entry = {
            "name": arm.name,
            "kind": arm.kind,
            "model": arm.model,
            "command": command_string(args) if args is not None else None,
            "eval_commands": evaluation["commands"],
            "eval": evaluation["eval"],
            "curve": evaluation["curve"],
            "flops": evaluation["flops"],
            "macs_mean": macs,
            "accuracy": accuracy,
        }
        if arm.kind == "random":
            entry["random_keep_from"] = arm.source
        elif arm.kind == "fixed":
            entry["fixed_maps_from"] = arm.source
        results = self._load_results()
        by_name = {a["name"]: a for a in results["arms"] if isinstance(a, dict) and "name" in a}
        by_name[arm.name] = entry
        results["arms"] = [by_name[a.name] for a in self.arms if a.name in by_name]
        _write_json(self.results_path, results)

    def _load_results(self):
        fresh = {"name": self.cfg["name"], "dataset": self.cfg["dataset"], "config": self.cfg["file"],
                 "taus": self.cfg["taus"], "arms": []}
        try:
            with open(self.results_path, encoding="utf-8") as f:
                old = json.load(f)
            if isinstance(old, dict) and isinstance(old.get("arms"), list):
                fresh["arms"] = old["arms"]
        except (OSError, ValueError):
            pass
        return fresh

    def summary(self):
        """One line per evaluated arm (stdout), the input-dependence figures where eval gives them."""
        lines = ["%-14s %-7s %9s %10s %8s %8s %9s" % ("arm", "kind", "accuracy", "MACs (M)", "speedup",
                                                     "macs_cv", "shuffled")]
        dense = None
        for arm in self.arms:
            if arm.name in self.evaluations and arm.kind == "dense":
                dense = summarize(arm, self.evaluations[arm.name])[0]
        for arm in self.arms:
            if arm.name not in self.evaluations:
                continue
            e = self.evaluations[arm.name]
            macs, accuracy = summarize(arm, e)
            dep = e["eval"].get("input_dependence") or {}
            cv = dep.get("macs_cv")
            shuffled = e["eval"].get("shuffle_accuracy")
            lines.append("%-14s %-7s %9.4f %10.1f %8s %8s %9s" % (
                arm.name, arm.kind, accuracy, macs / 1e6,
                "x%.2f" % (dense / macs) if dense and macs else "-",
                "%.4f" % cv if cv is not None else "-",
                "%.4f" % shuffled if shuffled is not None else "-"))
        return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="compare.py", description="Equal-MACs comparison of gated training against its baselines.")
    parser.add_argument("config", help="comparison config (JSON), e.g. tools/compare-cifar10-smoke.json")
    parser.add_argument("--mapgate", default=os.path.join(".", "build", "mapgate"),
                        help="the mapgate binary (default: ./build/mapgate)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--only", metavar="ARM", help="run this arm only (e.g. gated-p4)")
    parser.add_argument("--re-eval", action="store_true", help="ignore cached evaluations")
    parser.add_argument("--sources", metavar="FILE",
                        help="results file with the source evaluations of random and fixed arms whose "
                             "source arm has no evaluation here (e.g. docs/results/NAME.json)")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
        comparison = Comparison(cfg, args.mapgate, dry_run=args.dry_run, re_eval=args.re_eval,
                                sources=args.sources)
        if args.only is not None:
            comparison.arm(args.only)
        if not args.dry_run and not (os.path.isfile(args.mapgate) and os.access(args.mapgate, os.X_OK)):
            raise ToolError("--mapgate %s: not an executable file; build it "
                            "(cmake --build build) or pass --mapgate PATH" % args.mapgate)
        comparison.run(only=args.only)
        if not args.dry_run:
            print(comparison.summary())
        return 0
    except ConfigError as e:
        log("compare: %s" % e)
        return 2
    except ToolError as e:
        log("compare: %s" % e)
        return 1
    except MapgateFailed as e:
        code = e.returncode if e.returncode > 0 else 128 + (-e.returncode)
        log("compare: this command failed with exit status %d:\n  %s" % (code, e.command))
        return code
    except KeyboardInterrupt:
        log("compare: interrupted; run it again to continue where it stopped")
        return 130


if __name__ == "__main__":
    sys.exit(main())

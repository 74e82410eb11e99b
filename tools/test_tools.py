"""Tests of tools/compare.py and tools/plot_tradeoff.py; they need no mapgate binary
(a stand-in written by the test plays it) and no data.

Usage (from the repository root):
    python3 -m unittest tools/test_tools.py -v
    python3 -m unittest discover -s tools -p 'test_*.py' -v

The plot test needs matplotlib (Debian: python3-matplotlib) in the interpreter that runs
the tests, and is skipped, saying so, where it is missing.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import textwrap
import unittest

TOOLS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, TOOLS)

import compare  # noqa: E402

COMPARE = os.path.join(TOOLS, "compare.py")
PLOT = os.path.join(TOOLS, "plot_tradeoff.py")


def base_config(**overrides):
    cfg = {
        "name": "unit",
        "dataset": "cifar10",
        "out": "out",
        "reference": "ref",
        "common": {"depth": 22, "threads": 2, "seed": 1, "train_limit": 2000, "test_limit": 500},
        "gated": {"epochs": 2, "lr": 0.01, "schedule": "cosine", "bn_recal": 20, "penalties": [1, 4, 0.5],
                  "flags": {"gate-lr": 0.01}},
        "taus": [0.3, 0.5, 0.7],
        "static": {"penalties": [4]},
        "random": {"from_penalty": 4},
        "fixed": {"from_penalty": 4},
        "thin": {"growths": [6], "epochs": 12, "lr": 0.1, "schedule": "step"},
    }
    cfg.update(overrides)
    return cfg


class TempDirTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mapgate-tools-")
        self.addCleanup(shutil.rmtree, self.dir)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def write_config(self, cfg, name="cfg.json"):
        path = self.path(name)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(cfg, f) if not isinstance(cfg, str) else f.write(cfg)
        return path

    def write_run(self, run_dir, epochs_done, checkpoint=True, trailer=""):
        os.makedirs(run_dir, exist_ok=True)
        with open(os.path.join(run_dir, "metrics.jsonl"), "w", encoding="utf-8") as f:
            for e in range(1, epochs_done + 1):
                f.write(json.dumps({"epoch": e, "test_accuracy": 0.5}) + "\n")
            f.write(trailer)
        if checkpoint:
            with open(os.path.join(run_dir, "checkpoint.pt"), "wb") as f:
                f.write(b"fake")


class ConfigErrorsTest(TempDirTest):
    def assert_config_error(self, cfg, *substrings):
        path = self.write_config(cfg)
        with self.assertRaises(compare.ConfigError) as caught:
            compare.load_config(path)
        message = str(caught.exception)
        self.assertIn(path, message)
        for s in substrings:
            self.assertIn(s, message)

    def test_good_config_loads_with_defaults(self):
        cfg = compare.load_config(self.write_config(base_config()))
        self.assertEqual(cfg["common"]["growth"], 12)
        self.assertIsNone(cfg["common"]["batch"])
        self.assertEqual(cfg["random"]["tau"], 0.5)
        self.assertEqual(cfg["fixed"], {"from_penalty": 4, "tau": 0.5, "flags": []})
        self.assertEqual(cfg["gated"]["flags"], ["--gate-lr", "0.01"])

    def test_missing_top_level_key_names_key_and_file(self):
        cfg = base_config()
        del cfg["reference"]
        self.assert_config_error(cfg, 'missing key "reference"')

    def test_missing_nested_key_names_its_path(self):
        cfg = base_config()
        del cfg["gated"]["penalties"]
        self.assert_config_error(cfg, 'missing key "gated.penalties"')
        cfg = base_config()
        del cfg["common"]["depth"]
        self.assert_config_error(cfg, 'missing key "common.depth"')

    def test_wrong_types_and_values(self):
        cfg = base_config()
        cfg["common"]["depth"] = "22"
        self.assert_config_error(cfg, '"common.depth" is "22"; expected an integer')
        cfg = base_config()
        cfg["common"]["threads"] = True
        self.assert_config_error(cfg, '"common.threads" is true; expected an integer')
        self.assert_config_error(base_config(taus=[0.5, 1.5]), '"taus" has 1.5; expected 0 <= tau <= 1')
        self.assert_config_error(base_config(taus=[]), '"taus" is []; expected a non-empty list of numbers')
        cfg = base_config()
        cfg["gated"]["penalties"] = [1, 1]
        self.assert_config_error(cfg, '"gated.penalties"', "no repeated values")

    def test_unknown_key_is_refused(self):
        cfg = base_config()
        cfg["gated"]["penalty"] = 4
        self.assert_config_error(cfg, 'unknown key "gated.penalty"', "penalties")
        self.assert_config_error(base_config(extra=1), 'unknown key "extra"')

    def test_comment_is_allowed_anywhere(self):
        cfg = base_config(comment="top")
        cfg["thin"]["comment"] = "inner"
        compare.load_config(self.write_config(cfg))

    def test_random_source_must_be_a_gated_penalty(self):
        self.assert_config_error(base_config(random={"from_penalty": 8}),
                                 '"random.from_penalty" has 8; expected one of gated.penalties (1, 4, 0.5)')

    def test_fixed_section_is_checked_like_random(self):
        self.assert_config_error(base_config(fixed={"from_penalty": 8}),
                                 '"fixed.from_penalty" has 8; expected one of gated.penalties (1, 4, 0.5)')
        self.assert_config_error(base_config(fixed={"tau": 0.5}), 'missing key "fixed.from_penalty"')
        self.assert_config_error(base_config(fixed={"from_penalty": "4"}),
                                 '"fixed.from_penalty" is "4"; expected a number')
        self.assert_config_error(base_config(fixed={"from_penalty": 4, "tau": 1.5}),
                                 '"fixed.tau" has 1.5; expected 0 <= tau <= 1')
        self.assert_config_error(base_config(fixed={"from_penalty": 4, "keep": 3}),
                                 'unknown key "fixed.keep"', "from_penalty, tau")
        self.assert_config_error(base_config(fixed={"from_penalty": 4, "flags": {"fixed-maps": "1,0"}}),
                                 '"fixed.flags.fixed-maps"', "set by the tool")
        self.assert_config_error(base_config(fixed=[4]), '"fixed" is [4]; expected an object')
        cfg = compare.load_config(self.write_config(
            base_config(fixed={"from_penalty": 0.5, "tau": 0.3, "flags": {"p-clamp": 0.05}})))
        self.assertEqual(cfg["fixed"], {"from_penalty": 0.5, "tau": 0.3, "flags": ["--p-clamp", "0.05"]})

    def test_reserved_flag_refused(self):
        cfg = base_config()
        cfg["gated"]["flags"] = {"penalty": 3}
        self.assert_config_error(cfg, '"gated.flags.penalty"', "set by the tool")
        cfg["gated"]["flags"] = {"gate-lr": [1, 2]}
        self.assert_config_error(cfg, '"gated.flags.gate-lr"', "expected a number, a string or true/false")

    def test_invalid_json_and_missing_file(self):
        self.assert_config_error('{"name": "x",\n "out": }', "not valid JSON: line 2")
        with self.assertRaises(compare.ConfigError) as caught:
            compare.load_config(self.path("absent.json"))
        self.assertIn("absent.json: cannot read", str(caught.exception))

    def test_thin_train_limit_is_checked(self):
        cfg = base_config()
        cfg["thin"]["train_limit"] = -1
        self.assert_config_error(cfg, "thin.train_limit", ">= 0")

    def test_thin_epochs_default_from_reference(self):
        os.makedirs(self.path("ref"))
        with open(self.path("ref", "config.json"), "w", encoding="utf-8") as f:
            json.dump({"epochs": 10}, f)
        cfg = base_config(reference=self.path("ref"))
        del cfg["thin"]["epochs"]
        self.assertEqual(compare.load_config(self.write_config(cfg))["thin"]["epochs"], 12)
        cfg["reference"] = self.path("nowhere")
        self.assert_config_error(cfg, '"thin.epochs" is not given', "set thin.epochs")

    def test_warmup_epochs_must_leave_gated_epochs(self):
        cfg = base_config()
        cfg["gated"]["warmup_epochs"] = 2
        self.assert_config_error(cfg, '"gated.warmup_epochs" is 2', "fewer than gated.epochs (2)")
        cfg["gated"]["warmup_epochs"] = -1
        self.assert_config_error(cfg, "gated.warmup_epochs", ">= 0")

    def test_thin_epochs_default_from_scratch_is_the_gated_epochs(self):
        cfg = base_config(reference=self.path("nowhere"))  # no reference config needed
        cfg["gated"]["warmup_epochs"] = 1
        del cfg["thin"]["epochs"]
        self.assertEqual(compare.load_config(self.write_config(cfg))["thin"]["epochs"], 2)


class CommandLinesTest(TempDirTest):
    def arms(self, cfg=None):
        cfg = compare.load_config(self.write_config(cfg or base_config()))
        return cfg, {a.name: a for a in compare.plan_arms(cfg)}

    def test_arm_names_and_order(self):
        cfg = compare.load_config(self.write_config(base_config()))
        self.assertEqual([(a.name, a.kind) for a in compare.plan_arms(cfg)],
                         [("dense", "dense"), ("gated-p1", "gated"), ("gated-p4", "gated"),
                          ("gated-p0.5", "gated"), ("static-p4", "static"), ("random-p4", "random"),
                          ("fixed-p4", "fixed"), ("thin-k6", "thin")])

    finetune = ["train", "--dataset", "cifar10", "--out", None, "--depth", "22", "--growth", "12",
                "--epochs", "2", "--threads", "2", "--seed", "1", "--lr", "0.01", "--schedule", "cosine",
                "--train-limit", "2000", "--test-limit", "500", "--init", "ref", "--bn-recal", "20"]

    def expect_finetune(self, out):
        return [os.path.join("out", out) if a is None else a for a in self.finetune]

    def test_gated(self):
        _, arms = self.arms()
        self.assertEqual(arms["gated-p4"].train_args, self.expect_finetune("gated-p4") +
                         ["--gates", "reinforce", "--penalty", "4", "--gate-lr", "0.01"])
        self.assertEqual(arms["gated-p0.5"].train_args[-5:], ["reinforce", "--penalty", "0.5", "--gate-lr", "0.01"])
        self.assertEqual(arms["gated-p4"].epochs, 2)

    def test_from_scratch_arms_warm_up_instead_of_init(self):
        cfg = base_config()
        cfg["gated"]["warmup_epochs"] = 1
        _, arms = self.arms(cfg)
        scratch = [a for a in self.expect_finetune("gated-p4") if a not in ("--init", "ref")]
        scratch[scratch.index("--bn-recal"):scratch.index("--bn-recal")] = ["--warmup-epochs", "1"]
        self.assertEqual(arms["gated-p4"].train_args, scratch +
                         ["--gates", "reinforce", "--penalty", "4", "--gate-lr", "0.01"])
        for name in ("static-p4", "random-p4", "fixed-p4"):
            self.assertNotIn("--init", arms[name].train_args)
            self.assertIn("--warmup-epochs", arms[name].train_args)
        self.assertEqual(arms["dense"].model, "ref")  # the dense arm is still the reference

    def test_static(self):
        _, arms = self.arms()
        self.assertEqual(arms["static-p4"].train_args, self.expect_finetune("static-p4") +
                         ["--gates", "reinforce", "--penalty", "4", "--gate-lr", "0.01",
                          "--gate-weights", "frozen"])

    def test_random(self):
        _, arms = self.arms()
        arm = arms["random-p4"]
        self.assertEqual(arm.source, "gated-p4")
        rates = compare.keep_rates([0.99912, 0.0, 0.5, 1 / 12, 1.0])
        self.assertEqual(rates, "0.989,0.011,0.5,0.0833,0.989")  # inside (eps, 1 - eps), eps 0.01
        self.assertEqual(compare.keep_rates([1.0, 0.0], p_clamp=0.1), "0.899,0.101")
        self.assertEqual(compare.p_clamp_of(["--p-clamp", "0.05", "--gates"]), 0.05)
        self.assertEqual(compare.p_clamp_of(["--gates", "random"]), 0.01)
        self.assertEqual(compare.resolve_train_args(arm, rates), self.expect_finetune("random-p4") +
                         ["--gates", "random", "--random-keep", rates])

    def test_fixed(self):
        cfg = base_config(fixed={"from_penalty": 0.5, "flags": {"p-clamp": 0.05}})
        _, arms = self.arms(cfg)
        arm = arms["fixed-p0.5"]
        self.assertEqual((arm.kind, arm.source, arm.epochs, arm.curve), ("fixed", "gated-p0.5", 2, False))
        self.assertEqual(arm.run_dir, os.path.join("out", "fixed-p0.5"))
        self.assertEqual(arm.train_args, self.expect_finetune("fixed-p0.5") +
                         ["--gates", "fixed", "--fixed-maps", compare.MAPS_PLACEHOLDER, "--p-clamp", "0.05"])
        self.assertEqual(compare.resolve_train_args(arm, "1,0,1"), self.expect_finetune("fixed-p0.5") +
                         ["--gates", "fixed", "--fixed-maps", "1,0,1", "--p-clamp", "0.05"])
        self.assertEqual(compare.command_string(compare.resolve_train_args(arm, "1,0,1")),
                         "mapgate train --dataset cifar10 --out " + os.path.join("out", "fixed-p0.5") +
                         " --depth 22 --growth 12 --epochs 2 --threads 2 --seed 1 --lr 0.01 --schedule cosine"
                         " --train-limit 2000 --test-limit 500 --init ref --bn-recal 20"
                         " --gates fixed --fixed-maps 1,0,1 --p-clamp 0.05")

    def test_thin(self):
        cfg = base_config()
        cfg["common"]["batch"] = 32
        cfg["common"]["flags"] = {"no-augment": True, "skip-nonfinite": False}
        _, arms = self.arms(cfg)
        self.assertEqual(arms["thin-k6"].train_args,
                         ["train", "--dataset", "cifar10", "--out", os.path.join("out", "thin-k6"),
                          "--depth", "22", "--growth", "6", "--epochs", "12", "--threads", "2", "--seed", "1",
                          "--lr", "0.1", "--schedule", "step", "--batch", "32", "--train-limit", "2000",
                          "--test-limit", "500", "--no-augment"])

    def test_thin_train_limit_replaces_the_common_one(self):
        cfg = base_config()
        cfg["thin"]["train_limit"] = 0
        _, arms = self.arms(cfg)
        args = arms["thin-k6"].train_args
        self.assertEqual(args[args.index("--train-limit") + 1], "0")
        self.assertEqual(arms["gated-p4"].train_args[arms["gated-p4"].train_args.index("--train-limit") + 1], "2000")

    def test_optional_keys_leave_flags_out(self):
        cfg = base_config()
        cfg["common"] = {"depth": 40, "threads": 1, "seed": 0}
        cfg["gated"] = {"epochs": 1, "penalties": [2]}
        for key in ("static", "random", "fixed", "thin"):
            del cfg[key]
        _, arms = self.arms(cfg)
        self.assertEqual(sorted(arms), ["dense", "gated-p2"])
        self.assertEqual(arms["gated-p2"].train_args,
                         ["train", "--dataset", "cifar10", "--out", os.path.join("out", "gated-p2"),
                          "--depth", "40", "--growth", "12", "--epochs", "1", "--threads", "1", "--seed", "0",
                          "--init", "ref", "--gates", "reinforce", "--penalty", "2"])

    def test_eval_commands(self):
        cfg, arms = self.arms()
        tail = ["--json", "--threads", "2", "--test-limit", "500"]
        self.assertEqual(compare.eval_commands(cfg, arms["dense"]),
                         [["eval", "--model", "ref"] + tail, ["flops", "--model", "ref", "--json"]])
        run = os.path.join("out", "static-p4")
        self.assertEqual(compare.eval_commands(cfg, arms["static-p4"]),
                         [["eval", "--model", run] + tail,
                          ["eval", "--model", run, "--thresholds", "0.3,0.5,0.7"] + tail,
                          ["flops", "--model", run, "--json"]])
        self.assertEqual(len(compare.eval_commands(cfg, arms["random-p4"])), 2)  # no curve
        run = os.path.join("out", "fixed-p4")
        self.assertEqual(compare.eval_commands(cfg, arms["fixed-p4"]),
                         [["eval", "--model", run] + tail, ["flops", "--model", run, "--json"]])
        self.assertEqual(len(compare.eval_commands(cfg, arms["thin-k6"])), 2)

    def test_command_string_names_mapgate(self):
        self.assertEqual(compare.command_string(["eval", "--model", "a b"]), "mapgate eval --model 'a b'")

    def test_source_rates_from_curve_then_eval(self):
        evaluation = {"eval": {"threshold": 0.5, "per_layer_active": [0.1]},
                      "curve": [{"threshold": 0.5, "per_layer_active": [0.2]}]}
        self.assertEqual(compare.source_layer_rates(evaluation, 0.5, "g"), [0.2])
        evaluation["curve"] = [{"threshold": 0.3, "per_layer_active": [0.9]}]
        self.assertEqual(compare.source_layer_rates(evaluation, 0.5, "g"), [0.1])
        with self.assertRaises(compare.ToolError):
            compare.source_layer_rates(evaluation, 0.6, "g")


class FixedMapBitsTest(unittest.TestCase):
    """fixed_map_bits: per layer, the round(per_layer_active * k) maps of highest on-rate."""

    def evaluation(self, on_rates, active, curve=None):
        return {"eval": {"threshold": 0.5, "per_layer_active": active,
                         "input_dependence": {"macs_cv": 0.01, "map_on_rate": on_rates}},
                "curve": curve}

    def test_highest_on_rates_per_layer(self):
        # 3 layers of growth 4. Layer 0 keeps 2 (0.5 * 4), layer 1 keeps 1 (0.3 * 4 = 1.2),
        # layer 2 keeps all 4 (0.95 * 4 = 3.8).
        on_rates = [0.1, 0.9, 0.3, 0.8,
                    0.2, 0.0, 0.7, 0.6,
                    0.0, 0.0, 0.1, 0.0]
        bits = compare.fixed_map_bits(self.evaluation(on_rates, [0.5, 0.3, 0.95]), 0.5, "gated-p4", "fixed-p4")
        self.assertEqual(bits, "0,1,0,1," "0,0,1,0," "1,1,1,1")

    def test_ties_go_to_the_lower_index_and_halves_round_up(self):
        # Growth 4: 0.125 * 4 = 0.5 keeps 1 map, 0.625 * 4 = 2.5 keeps 3, 0.0 keeps none.
        on_rates = [0.5, 0.5, 0.5, 0.5,
                    0.2, 0.4, 0.4, 0.4,
                    0.9, 0.9, 0.9, 0.9]
        bits = compare.fixed_map_bits(self.evaluation(on_rates, [0.125, 0.625, 0.0]), 0.5, "g", "f")
        self.assertEqual(bits, "1,0,0,0," "0,1,1,1," "0,0,0,0")

    def test_other_tau_takes_counts_from_the_curve_and_ranks_by_the_main_eval(self):
        on_rates = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]  # 2 layers of growth 3
        curve = [{"threshold": 0.3, "per_layer_active": [1.0, 2 / 3]},
                 {"threshold": 0.5, "per_layer_active": [1 / 3, 1 / 3]}]
        evaluation = self.evaluation(on_rates, [1 / 3, 1 / 3], curve)
        self.assertEqual(compare.fixed_map_bits(evaluation, 0.5, "g", "f"), "0,0,1,0,0,1")
        self.assertEqual(compare.fixed_map_bits(evaluation, 0.3, "g", "f"), "1,1,1,0,1,1")
        with self.assertRaises(compare.ToolError) as caught:
            compare.fixed_map_bits(evaluation, 0.7, "g", "f")
        self.assertIn("no per_layer_active at tau 0.7", str(caught.exception))

    def test_source_without_map_on_rate_asks_for_a_re_eval(self):
        evaluation = self.evaluation(None, [0.5])
        del evaluation["eval"]["input_dependence"]["map_on_rate"]
        for e in (evaluation, {"eval": {"threshold": 0.5, "per_layer_active": [0.5]}, "curve": None}):
            with self.assertRaises(compare.ToolError) as caught:
                compare.fixed_map_bits(e, 0.5, "gated-p8", "fixed-p8")
            message = str(caught.exception)
            for s in ("fixed-p8", "gated-p8", "input_dependence.map_on_rate", "newer mapgate",
                      "--only gated-p8 --re-eval"):
                self.assertIn(s, message)

    def test_on_rates_that_do_not_fit_the_layers(self):
        for on_rates in ([0.1, 0.2, 0.3], [], "0.1,0.2", [0.1, None, 0.3, 0.4]):
            with self.assertRaises(compare.ToolError) as caught:
                compare.fixed_map_bits(self.evaluation(on_rates, [0.5, 0.5]), 0.5, "gated-p4", "fixed-p4")
            self.assertIn("fixed-p4: the evaluation of gated-p4 gives map_on_rate", str(caught.exception))


class RunStateTest(TempDirTest):
    def test_states(self):
        run = self.path("run")
        self.assertEqual(compare.run_state(run, 3), "new")
        self.write_run(run, 1)
        self.assertEqual(compare.run_state(run, 3), "partial")
        self.write_run(run, 3)
        self.assertEqual(compare.run_state(run, 3), "finished")

    def test_metrics_without_checkpoint_is_new(self):
        run = self.path("run")
        self.write_run(run, 1, checkpoint=False)
        self.assertEqual(compare.run_state(run, 3), "new")

    def test_cut_line_is_ignored(self):
        run = self.path("run")
        self.write_run(run, 2, trailer='{"epoch": 3, "test_acc')
        self.assertEqual(compare.run_state(run, 3), "partial")

    def test_train_argv_per_state(self):
        arm = compare.Arm("gated-p1", "gated", "r", "r", 3, ["train", "--out", "r"])
        self.assertEqual(compare.train_argv(arm, arm.train_args, "new"), ["train", "--out", "r"])
        self.assertEqual(compare.train_argv(arm, arm.train_args, "partial"), ["train", "--out", "r", "--resume"])
        self.assertIsNone(compare.train_argv(arm, arm.train_args, "finished"))


FAKE_MAPGATE = r'''
# A stand-in for mapgate: enough of train, eval and flops for compare.py.
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(json.dumps(args) + "\n")
if os.environ.get("FAKE_FAIL") == args[0]:
    print("fake mapgate: failing as asked", file=sys.stderr)
    sys.exit(3)
def flag(name, default=None):
    return args[args.index(name) + 1] if name in args else default
if args[0] == "train":
    out, epochs = flag("--out"), int(flag("--epochs"))
    ckpt = os.path.join(out, "checkpoint.pt")
    if os.path.exists(ckpt) and "--resume" not in args:
        print("--out: already holds a run", file=sys.stderr); sys.exit(2)
    if "--resume" in args and not os.path.exists(ckpt):
        print("--resume: nothing to resume", file=sys.stderr); sys.exit(1)
    if flag("--gates") == "fixed" and len(flag("--fixed-maps").split(",")) != 18 * int(flag("--growth")):
        print("--fixed-maps: wrong count", file=sys.stderr); sys.exit(2)
    os.makedirs(out, exist_ok=True)
    done = 0
    if os.path.exists(os.path.join(out, "metrics.jsonl")):
        done = sum(1 for _ in open(os.path.join(out, "metrics.jsonl")))
    stop = int(os.environ.get("FAKE_STOP_AFTER", epochs))
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump({"gates": flag("--gates", "off"), "growth": int(flag("--growth")), "epochs": epochs}, f)
    with open(os.path.join(out, "metrics.jsonl"), "a") as f:
        for e in range(done + 1, min(epochs, stop) + 1):
            f.write(json.dumps({"epoch": e}) + "\n")
            print("epoch %d" % e, file=sys.stderr)
    open(ckpt, "w").write("x")
    sys.exit(0)
model = flag("--model")
config = json.load(open(os.path.join(model, "config.json")))
gated = config.get("gates", "off") != "off"
macs_dense = 72906000 * config.get("growth", 12) // 12
layers = [0.9991, 0.0, 0.5] + [0.25] * 15
# Per-map on-rates, layer-major: map j of every layer is on at (5 j mod 12) / 12, so the
# most often on are maps 7, 2, 9, 4, 11, 6, ... (5 j mod 12 = 11, 10, 9, 8, 7, 6, ...).
map_on_rate = [((5 * j) % 12) / 12 for _ in layers for j in range(config.get("growth", 12))]
def point(tau):
    return {"threshold": tau, "accuracy": 0.5 + tau / 10, "macs_dense": macs_dense,
            "macs_mean": macs_dense * (1 - tau / 2), "per_layer_active": layers}
if args[0] == "flops":
    print(json.dumps({"params": 1000, "macs": macs_dense}))
elif "--thresholds" in args:
    taus = [float(t) for t in flag("--thresholds").split(",")]
    print(json.dumps({"model": model, "examples": 500, "curve": [point(t) for t in taus]}))
else:
    out = {"model": model, "accuracy": 0.8, "loss": 0.5, "examples": 500}
    if gated:
        out.update(point(0.5))
        out["input_dependence"] = {"macs_cv": 0.01}
        if not os.environ.get("FAKE_OLD_EVAL"):  # a mapgate from before map_on_rate
            out["input_dependence"]["map_on_rate"] = map_on_rate
        out["shuffle_accuracy"] = 0.79
    print(json.dumps(out, indent=2))
'''


# --fixed-maps of the fake's gated evaluation (per_layer_active [0.9991, 0, 0.5] + [0.25] * 15,
# growth 12): layer 0 keeps all 12 maps, layer 1 none, layer 2 its 6 most often on (7, 2, 9,
# 4, 11, 6), every other layer its 3 most often on (7, 2, 9).
FAKE_BITS = ",".join(["1"] * 12 + ["0"] * 12 + ["0", "0", "1", "0", "1", "0", "1", "1", "0", "1", "0", "1"]
                     + ["0", "0", "1", "0", "0", "0", "0", "1", "0", "1", "0", "0"] * 15)


class DriverTest(TempDirTest):
    """compare.py end to end against the stand-in mapgate: what it runs, skips and resumes."""

    def setUp(self):
        super().setUp()
        self.fake = self.path("fake-mapgate")
        with open(self.fake, "w", encoding="utf-8") as f:
            f.write("#!" + sys.executable + "\n" + textwrap.dedent(FAKE_MAPGATE))
        os.chmod(self.fake, 0o755)
        self.log = self.path("calls.jsonl")
        os.makedirs(self.path("ref"))
        with open(self.path("ref", "config.json"), "w", encoding="utf-8") as f:
            json.dump({"gates": "off", "growth": 12, "epochs": 10}, f)
        with open(self.path("ref", "checkpoint.pt"), "w", encoding="utf-8") as f:
            f.write("x")
        self.config = self.write_config(base_config(reference="ref"))

    def compare(self, *extra, env=None):
        environment = dict(os.environ, FAKE_LOG=self.log, **(env or {}))
        done = subprocess.run([sys.executable, COMPARE, self.config, "--mapgate", self.fake] + list(extra),
                              cwd=self.dir, env=environment, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True)
        return done

    def calls(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log, encoding="utf-8") as f:
            calls = [json.loads(line) for line in f]
        os.remove(self.log)
        return calls

    def results(self):
        with open(self.path("out", "results.json"), encoding="utf-8") as f:
            return json.load(f)

    def test_full_run_then_rerun_skips_everything(self):
        done = self.compare()
        self.assertEqual(done.returncode, 0, done.stderr)
        calls = self.calls()
        trained = [c[c.index("--out") + 1] for c in calls if c[0] == "train"]
        self.assertEqual(trained, [os.path.join("out", n) for n in
                                   ("gated-p1", "gated-p4", "gated-p0.5", "static-p4", "random-p4",
                                    "fixed-p4", "thin-k6")])
        self.assertFalse(any("--resume" in c for c in calls))
        self.assertIn("[5/8] training static-p4 ...", done.stderr)
        self.assertIn("[7/8] training fixed-p4 ...", done.stderr)
        self.assertIn("epoch 2", done.stderr)  # mapgate's own stderr streams through

        results = self.results()
        self.assertEqual(results["name"], "unit")
        arms = {a["name"]: a for a in results["arms"]}
        self.assertEqual(list(arms), ["dense", "gated-p1", "gated-p4", "gated-p0.5", "static-p4",
                                      "random-p4", "fixed-p4", "thin-k6"])
        self.assertIsNone(arms["dense"]["command"])
        self.assertEqual(arms["dense"]["macs_mean"], 72906000)  # from flops: dense eval has no MACs
        self.assertEqual(arms["thin-k6"]["macs_mean"], 72906000 // 2)
        self.assertEqual(arms["gated-p4"]["macs_mean"], 72906000 * 0.75)
        self.assertEqual(arms["gated-p4"]["accuracy"], 0.55)
        self.assertEqual(arms["thin-k6"]["accuracy"], 0.8)
        self.assertEqual([p["threshold"] for p in arms["gated-p4"]["curve"]], [0.3, 0.5, 0.7])
        self.assertIsNone(arms["random-p4"]["curve"])
        self.assertTrue(arms["static-p4"]["command"].startswith("mapgate train "))
        self.assertTrue(arms["static-p4"]["command"].endswith("--gate-weights frozen"))
        self.assertTrue(arms["random-p4"]["command"].endswith(
            "--gates random --random-keep 0.989,0.011,0.5," + ",".join(["0.25"] * 15)))
        self.assertEqual(arms["gated-p4"]["eval"]["shuffle_accuracy"], 0.79)
        self.assertIsNone(arms["fixed-p4"]["curve"])
        self.assertEqual(arms["fixed-p4"]["fixed_maps_from"], "gated-p4")
        self.assertEqual(arms["fixed-p4"]["macs_mean"], 72906000 * 0.75)
        self.assertTrue(arms["fixed-p4"]["command"].endswith("--gates fixed --fixed-maps " + FAKE_BITS))
        fixed_run = os.path.join("out", "fixed-p4")
        self.assertEqual(arms["fixed-p4"]["eval_commands"],
                         ["mapgate eval --model %s --json --threads 2 --test-limit 500" % fixed_run,
                          "mapgate flops --model %s --json" % fixed_run])

        # Again: everything is finished and evaluated, so mapgate is not called at all.
        again = self.compare()
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertEqual(self.calls(), [])
        self.assertIn("gated-p1: already trained (2 epochs), skipping training", again.stderr)
        self.assertEqual(self.results(), results)

    def test_unfinished_arm_is_resumed(self):
        done = self.compare("--only", "gated-p1", env={"FAKE_STOP_AFTER": "1"})
        self.assertEqual(done.returncode, 1)  # training stopped short of its epochs
        self.assertIn("without a metrics.jsonl line for epoch 2", done.stderr)
        self.assertEqual(compare.run_state(self.path("out", "gated-p1"), 2), "partial")
        self.calls()
        done = self.compare("--only", "gated-p1")
        self.assertEqual(done.returncode, 0, done.stderr)
        train = [c for c in self.calls() if c[0] == "train"]
        self.assertEqual(len(train), 1)
        self.assertEqual(train[0][-1], "--resume")
        self.assertIn("[2/8] resuming gated-p1 ...", done.stderr)
        self.assertEqual([a["name"] for a in self.results()["arms"]], ["gated-p1"])

    def test_only_random_needs_its_source(self):
        done = self.compare("--only", "random-p4")
        self.assertEqual(done.returncode, 1)
        self.assertIn("random-p4 needs the evaluation of gated-p4", done.stderr)
        self.assertEqual(self.compare("--only", "gated-p4").returncode, 0)
        self.calls()
        done = self.compare("--only", "random-p4")
        self.assertEqual(done.returncode, 0, done.stderr)
        train = [c for c in self.calls() if c[0] == "train"]
        self.assertEqual(train[0][train[0].index("--random-keep") + 1],
                         "0.989,0.011,0.5," + ",".join(["0.25"] * 15))
        self.assertEqual([a["name"] for a in self.results()["arms"]], ["gated-p4", "random-p4"])

    def test_only_fixed_needs_its_source_with_map_on_rate(self):
        done = self.compare("--only", "fixed-p4")
        self.assertEqual(done.returncode, 1)
        self.assertIn("fixed-p4 needs the evaluation of gated-p4 at tau 0.5", done.stderr)
        # Evaluated by a mapgate from before map_on_rate: the fixed arm says to re-evaluate it.
        self.assertEqual(self.compare("--only", "gated-p4", env={"FAKE_OLD_EVAL": "1"}).returncode, 0)
        self.calls()
        done = self.compare("--only", "fixed-p4")
        self.assertEqual(done.returncode, 1)
        self.assertIn("fixed-p4: the evaluation of gated-p4 has no input_dependence.map_on_rate", done.stderr)
        self.assertIn("--only gated-p4 --re-eval", done.stderr)
        self.assertEqual(self.calls(), [])
        done = self.compare("--only", "gated-p4", "--re-eval")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual([c[0] for c in self.calls()], ["eval", "eval", "flops"])  # trained: eval only
        done = self.compare("--only", "fixed-p4")
        self.assertEqual(done.returncode, 0, done.stderr)
        train = [c for c in self.calls() if c[0] == "train"]
        self.assertEqual(len(train), 1)
        self.assertEqual(train[0][train[0].index("--gates"):], ["--gates", "fixed", "--fixed-maps", FAKE_BITS])
        self.assertEqual([a["name"] for a in self.results()["arms"]], ["gated-p4", "fixed-p4"])

    def test_sources_file_stands_in_for_a_source_run_that_is_not_here(self):
        self.assertEqual(self.compare("--only", "gated-p4").returncode, 0)
        recorded = self.path("recorded.json")
        os.replace(self.path("out", "results.json"), recorded)
        shutil.rmtree(self.path("out"))  # another machine: the source's run is not here
        self.calls()
        done = self.compare("--only", "fixed-p4", "--sources", recorded)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("fixed-p4 takes the evaluation of gated-p4 recorded in", done.stderr)
        train = [c for c in self.calls() if c[0] == "train"]
        self.assertEqual([t[t.index("--out") + 1] for t in train], [os.path.join("out", "fixed-p4")])
        self.assertEqual(train[0][train[0].index("--gates"):], ["--gates", "fixed", "--fixed-maps", FAKE_BITS])
        # A results file whose source was trained by another command is refused.
        with open(recorded, encoding="utf-8") as f:
            results = json.load(f)
        results["arms"][0]["command"] += " --gate-lr 0.01"
        with open(recorded, "w", encoding="utf-8") as f:
            json.dump(results, f)
        done = self.compare("--only", "random-p4", "--sources", recorded)
        self.assertEqual(done.returncode, 1)
        self.assertIn("gated-p4 was trained by", done.stderr)
        self.assertEqual(self.compare("--only", "random-p4", "--sources", self.path("none.json")).returncode, 1)
        self.assertEqual([c for c in self.calls() if c[0] == "train"], [])

    def test_only_unknown_arm(self):
        done = self.compare("--only", "gated-p9")
        self.assertEqual(done.returncode, 2)
        self.assertIn("--only gated-p9: no such arm", done.stderr)

    def test_failing_mapgate_stops_with_its_exit_code(self):
        done = self.compare(env={"FAKE_FAIL": "train"})
        self.assertEqual(done.returncode, 3)
        self.assertIn("failed with exit status 3", done.stderr)
        self.assertIn("train --dataset cifar10 --out " + os.path.join("out", "gated-p1"), done.stderr)
        self.assertEqual([c[0] for c in self.calls()], ["eval", "flops", "train"])  # dense, then stop

    def test_changed_command_is_refused(self):
        self.assertEqual(self.compare("--only", "gated-p1").returncode, 0)
        cfg = base_config(reference="ref")
        cfg["gated"]["lr"] = 0.02
        self.write_config(cfg)
        done = self.compare("--only", "gated-p1")
        self.assertEqual(done.returncode, 1)
        self.assertIn("was trained by another command", done.stderr)
        # --epochs may change (a resumed run may be extended): that continues the run.
        cfg["gated"]["lr"] = 0.01
        cfg["gated"]["epochs"] = 3
        self.write_config(cfg)
        self.calls()
        done = self.compare("--only", "gated-p1")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(self.calls()[0][-1], "--resume")

    def test_dry_run_runs_nothing(self):
        done = self.compare("--dry-run")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(self.calls(), [])
        self.assertFalse(os.path.exists(self.path("out")))
        self.assertIn(self.fake + " train --dataset cifar10 --out " + os.path.join("out", "gated-p1"), done.stdout)
        self.assertIn("--random-keep '<per_layer_active of gated-p4 at tau 0.5>'", done.stdout)
        self.assertIn("# [7/8] fixed-p4 (fixed)", done.stdout)
        self.assertIn("--gates fixed --fixed-maps '<maps most often on in gated-p4, per_layer_active at tau 0.5>'",
                      done.stdout)

    def test_missing_binary(self):
        done = subprocess.run([sys.executable, COMPARE, self.config, "--mapgate", self.path("nope")],
                              cwd=self.dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True)
        self.assertEqual(done.returncode, 1)
        self.assertIn("not an executable file", done.stderr)


def _has_matplotlib():
    return subprocess.run([sys.executable, "-c", "import matplotlib"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


class PlotTest(TempDirTest):
    @unittest.skipUnless(_has_matplotlib(), "matplotlib is not importable by %s; run the tests with "
                         "Debian's python3 (python3-matplotlib)" % sys.executable)
    def test_writes_a_900x600_png(self):
        def curve(scale):
            return [{"threshold": t, "accuracy": 0.8 - 0.1 * t * scale, "macs_mean": 7.0e7 * (1 - t) * scale,
                     "macs_dense": 72906000} for t in (0.3, 0.5, 0.7)]
        results = {"name": "hand-made", "arms": [
            {"name": "dense", "kind": "dense", "macs_mean": 72906000, "accuracy": 0.848, "curve": None},
            {"name": "gated-p1", "kind": "gated", "macs_mean": 5.0e7, "accuracy": 0.80, "curve": curve(1.0),
             "eval": {"macs_dense": 72906000}},
            {"name": "gated-p8", "kind": "gated", "macs_mean": 2.5e7, "accuracy": 0.74, "curve": curve(0.6)},
            {"name": "static-p8", "kind": "static", "macs_mean": 2.6e7, "accuracy": 0.73, "curve": curve(0.5)},
            {"name": "random-p8", "kind": "random", "macs_mean": 2.5e7, "accuracy": 0.70},
            {"name": "fixed-p8", "kind": "fixed", "macs_mean": 2.5e7, "accuracy": 0.72},
            {"name": "thin-k6", "kind": "thin", "macs_mean": 2.32e7, "accuracy": 0.76},
        ]}
        first = self.path("results.json")
        with open(first, "w", encoding="utf-8") as f:
            json.dump(results, f)
        second = self.path("bare.json")  # a bare list of arms is read too
        with open(second, "w", encoding="utf-8") as f:
            json.dump(results["arms"][:2], f)
        png = self.path("plot.png")
        done = subprocess.run([sys.executable, PLOT, first, second, "-o", png], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True)
        self.assertEqual(done.returncode, 0, done.stderr)
        with open(png, "rb") as f:
            head = f.read(24)
        self.assertEqual(head[:8], b"\x89PNG\r\n\x1a\n")
        self.assertEqual(head[12:16], b"IHDR")
        width, height = struct.unpack(">II", head[16:24])
        self.assertEqual((width, height), (900, 600))

    @unittest.skipUnless(_has_matplotlib(), "matplotlib is not importable by %s" % sys.executable)
    def test_short_names_prefix_labels_and_a_repeated_dense_arm_is_drawn_once(self):
        import plot_tradeoff
        arms = [{"name": "dense", "kind": "dense", "macs_mean": 72906000, "accuracy": 0.848, "curve": None},
                {"name": "thin-k6", "kind": "thin", "macs_mean": 2.32e7, "accuracy": 0.76}]
        files = []
        for name in ("long-config-one", "long-config-two"):
            files.append(self.path(name + ".json"))
            with open(files[-1], "w", encoding="utf-8") as f:
                json.dump({"name": name, "arms": arms}, f)
        labels = plot_tradeoff.plot(files, self.path("p.png"), short_names=["ft", "scratch"])
        self.assertEqual(labels, ["ft: dense", "ft: thin-k6", "scratch: thin-k6"])
        labels = plot_tradeoff.plot(files, self.path("p.png"))
        self.assertEqual(labels[0], "long-config-one: dense")
        done = subprocess.run([sys.executable, PLOT] + files + ["--names", "one", "-o", self.path("q.png")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        self.assertEqual(done.returncode, 2)
        self.assertIn("--names: 1 names for 2 inputs", done.stderr)

    def test_bad_results_file(self):
        bad = self.path("bad.json")
        with open(bad, "w", encoding="utf-8") as f:
            json.dump({"arms": [{"name": "x", "kind": "thin"}]}, f)
        if not _has_matplotlib():
            self.skipTest("matplotlib is not importable by %s" % sys.executable)
        done = subprocess.run([sys.executable, PLOT, bad, "-o", self.path("p.png")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True)
        self.assertEqual(done.returncode, 1)
        self.assertIn('arm 0 has no "macs_mean"', done.stderr)


if __name__ == "__main__":
    unittest.main()

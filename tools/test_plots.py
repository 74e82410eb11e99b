"""Tests of the pictures (tools/plot_*.py): each is a valid PNG of its stated pixel size made
from tiny files the test writes, and bad input gives one line naming the file. No mapgate
binary, no data set. Needs matplotlib (Debian: python3-matplotlib); skipped, saying so,
where the interpreter lacks it.

Usage (from the repository root):
    python3 -m unittest discover -s tools -p 'test_plots.py' -v
"""
import contextlib
import gzip
import io
import json
import os
import shutil
import struct
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mapgate_files import PlotError, read_metrics  # noqa: E402  (no matplotlib needed)

from mapgate_files import per_example  # noqa: E402

RECORD = 1 + 3 * 32 * 32  # a CIFAR-10 binary record: label byte, CHW pixels

try:
    from cifar_images import read_test_batch
    HAVE_NUMPY, WHY_NOT_NUMPY = True, ""
except ImportError as e:
    HAVE_NUMPY, WHY_NOT_NUMPY = False, "%s; run the tests with Debian's python3 (python3-numpy)" % e

try:
    import plot_curves
    import plot_difficulty
    import plot_gallery
    import plot_layers
    import plot_tradeoff
    import cascade
    HAVE_MATPLOTLIB, WHY = True, ""
except ImportError as e:  # matplotlib missing: plot_common imports it
    HAVE_MATPLOTLIB, WHY = False, "%s; run the tests with Debian's python3 (python3-matplotlib)" % e

DENSE_MACS = 1000000


def png_size(path):
    """(width, height) from a PNG's IHDR; fails the test if the file is not a PNG."""
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise AssertionError("%s is not a PNG (starts %r)" % (path, head[:16]))
    return struct.unpack(">II", head[16:24])


def gated_eval(layers=6, maps=4, tau=0.5):
    """A `mapgate eval --json` of a gated model: map j of layer l on for (l + j) % 5 / 4 of images."""
    rates = [((l + j) % 5) / 4 for l in range(layers) for j in range(maps)]
    per_layer = [sum(rates[l * maps:(l + 1) * maps]) / maps for l in range(layers)]
    return {"model": "runs/x/gated-p4/checkpoint.pt", "accuracy": 0.7, "examples": 20, "threshold": tau,
            "macs_dense": DENSE_MACS, "macs_mean": 600000.0, "per_layer_active": per_layer,
            "input_dependence": {"map_on_rate": rates, "conditional_fraction": 0.5}}


def with_per_example(evaluation, n=30):
    """evaluation plus per_example columns for n images: label i % 10 (as cifar_records),
    every third prediction wrong, loss 0.1 i, MACs falling with i, map j of image i kept when
    (i + j) % 3."""
    maps = len(evaluation["input_dependence"]["map_on_rate"])
    evaluation["per_example"] = {
        "label": [i % 10 for i in range(n)], "prediction": [(i % 10 + (i % 3 == 0)) % 10 for i in range(n)],
        "loss": [0.1 * i for i in range(n)], "macs": [DENSE_MACS - 1000 * i for i in range(n)],
        "mask": ["".join("1" if (i + j) % 3 else "0" for j in range(maps)) for i in range(n)]}
    evaluation["per_class"] = [{"class": "class%d" % c} for c in range(10)]
    return evaluation


def cifar_records(n, label=lambda i: i % 10):
    """n CIFAR-10 binary records: label i % 10, pixel c of image i (i * 7 + c) % 256."""
    return b"".join(bytes([label(i)]) + bytes((i * 7 + c) % 256 for c in range(RECORD - 1)) for i in range(n))


def curve(taus=(0.3, 0.5, 0.7)):
    return [{"threshold": t, "accuracy": 0.8 - 0.2 * t, "macs_mean": DENSE_MACS * (1 - t),
             "macs_dense": DENSE_MACS} for t in taus]


def epoch_line(epoch, gated):
    row = {"epoch": epoch, "lr": 0.1, "test_accuracy": 0.5 + 0.05 * epoch, "train_accuracy": 0.45 + 0.06 * epoch}
    if gated:
        row.update({"test_active_fraction": 0.9 - 0.1 * epoch, "train_kept_fraction": 0.95 - 0.1 * epoch,
                    "test_macs_mean": DENSE_MACS * (0.9 - 0.1 * epoch), "train_macs_mean": DENSE_MACS * 0.8,
                    "test_macs_dense": DENSE_MACS, "test_per_layer_active": gated_eval()["per_layer_active"],
                    "test_input_dependence": gated_eval()["input_dependence"]})
    return row


class FilesTestCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mapgate-plots-")
        self.addCleanup(shutil.rmtree, self.dir)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def write(self, name, obj):
        with open(self.path(name), "w", encoding="utf-8") as f:
            f.write(obj if isinstance(obj, str) else json.dumps(obj))
        return self.path(name)

    def write_run(self, name, epochs, gated, extra=""):
        os.makedirs(self.path(name))
        lines = [json.dumps(epoch_line(e, gated)) for e in range(1, epochs + 1)]
        self.write(os.path.join(name, "metrics.jsonl"), "\n".join(lines) + "\n" + extra)
        return self.path(name)


@unittest.skipUnless(HAVE_MATPLOTLIB, WHY)
class PlotTestCase(FilesTestCase):
    def run_main(self, module, *argv):
        """(exit code, stderr) of module.main(argv)."""
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = module.main(list(argv))
        return code, err.getvalue()

    def assert_png(self, module, size, *argv):
        out = self.path("out.png")
        code, err = self.run_main(module, *argv, "-o", out)
        self.assertEqual(code, 0, err)
        self.assertEqual(png_size(out), size)

    def assert_fails(self, module, message, *argv):
        code, err = self.run_main(module, *argv, "-o", self.path("bad.png"))
        self.assertEqual(code, 1)
        self.assertIn(message, err)
        self.assertEqual(err.count("\n"), 1, err)
        self.assertFalse(os.path.exists(self.path("bad.png")))


class MetricsTest(FilesTestCase):
    def test_later_line_of_an_epoch_wins_and_blank_lines_pass(self):
        run = self.write_run("run", 2, gated=False, extra="\n" + json.dumps({"epoch": 2, "test_accuracy": 0.9}))
        rows = read_metrics(run)
        self.assertEqual([r["epoch"] for r in rows], [1, 2])
        self.assertEqual(rows[1]["test_accuracy"], 0.9)

    def test_bad_lines_name_file_and_line(self):
        run = self.write_run("run", 1, gated=False, extra="{oops\n")
        with self.assertRaisesRegex(PlotError, "metrics.jsonl: line 2 is not valid JSON"):
            read_metrics(run)
        self.write(os.path.join("run", "metrics.jsonl"), '{"lr": 1}\n')
        with self.assertRaisesRegex(PlotError, 'line 1 has no integer "epoch"'):
            read_metrics(run)
        self.write(os.path.join("run", "metrics.jsonl"), "")
        with self.assertRaisesRegex(PlotError, "no epoch lines"):
            read_metrics(run)


class CurvesTest(PlotTestCase):
    def test_dense_and_gated_runs(self):
        dense = self.write_run("dense", 3, gated=False)
        gated = self.write_run("gated", 2, gated=True)
        self.assert_png(plot_curves, (1200, 420), dense, os.path.join(gated, "metrics.jsonl"))

    def test_dense_run_alone(self):
        self.assert_png(plot_curves, (1200, 420), self.write_run("dense", 1, gated=False))

    def test_missing_run(self):
        self.assert_fails(plot_curves, "absent: cannot read (No such file or directory); expected a run directory",
                          self.path("absent"))


class LayersTest(PlotTestCase):
    def test_eval_json(self):
        self.assert_png(plot_layers, (900, 700), self.write("eval.json", gated_eval()))

    def test_layers_that_do_not_split_into_blocks(self):
        self.assert_png(plot_layers, (900, 700), self.write("eval.json", gated_eval(layers=4, maps=3)))

    def test_compare_results_arm_and_run_directory(self):
        results = self.write("results.json", {"name": "c", "arms": [{"name": "gated-p4", "eval": gated_eval()}]})
        self.assert_png(plot_layers, (900, 700), results, "--arm", "gated-p4")
        self.assert_fails(plot_layers, "a comparison; choose its arm with --arm (one of gated-p4)", results)
        self.assert_fails(plot_layers, 'no arm "p9" (there are gated-p4)', results, "--arm", "p9")
        self.assert_png(plot_layers, (900, 700), self.write_run("run", 2, gated=True))

    def test_without_on_rates(self):
        evaluation = gated_eval()
        del evaluation["input_dependence"]["map_on_rate"]
        self.assert_fails(plot_layers, "eval.json: no input_dependence.map_on_rate",
                          self.write("eval.json", evaluation))
        self.assert_fails(plot_layers, "run: no input_dependence.map_on_rate",
                          self.write_run("run", 1, gated=False))
        evaluation = gated_eval()
        evaluation["per_layer_active"].pop()
        self.assert_fails(plot_layers, "24 map on-rates do not split into the 5 layers",
                          self.write("odd.json", evaluation))


class TradeoffInputsTest(PlotTestCase):
    def test_labels_of_coinciding_points_do_not_overlap(self):
        from plot_common import figure
        fig, ax = figure(900, 600)
        ax.set_xlim(0, 80)
        ax.set_ylim(0.6, 0.9)
        anchors = [(37.8, 0.797, "D: gated-p4 (tau 0.5)"), (37.8, 0.799, "D: random-p4"), (37.8, 0.798, "D: x"),
                   (10.0, 0.7, "far away")]
        notes = plot_tradeoff.place_labels(fig, ax, anchors)
        renderer = fig.canvas.get_renderer()
        boxes = [n.get_window_extent(renderer) for n in notes]
        for i in range(len(boxes)):
            for j in range(i):
                self.assertFalse(boxes[i].overlaps(boxes[j]), (anchors[i][2], anchors[j][2]))
        self.assertEqual(notes[0].xyann, (6, 4))  # the first label and a lone one stay beside their point
        self.assertEqual(notes[3].xyann, (6, 4))

    def test_arms_draws_only_the_named_arms(self):
        def arm(name, kind, macs):
            return {"name": name, "kind": kind, "macs_mean": macs, "accuracy": 0.8}
        a = self.write("a.json", {"name": "a", "arms": [arm("dense", "dense", DENSE_MACS), arm("thin-k6", "thin", 1e6)]})
        b = self.write("b.json", {"name": "b", "arms": [arm("thin-k6", "thin", 2e6), arm("fixed-p4", "fixed", 3e6)]})
        out = self.path("out.png")
        labels = plot_tradeoff.plot([a, b], out, short_names=["A", "B"], wanted={"A:thin-k6", "fixed-p4"})
        self.assertEqual(labels, ["A: thin-k6", "B: fixed-p4"])
        self.assertEqual(png_size(out), (900, 600))
        self.assert_fails(plot_tradeoff, "--arms: B:dense names no arm", a, b, "--names", "A,B", "--arms", "A:dense,B:dense")

    def test_eval_curve_and_both_together(self):
        evaluation = self.write("eval.json", gated_eval(tau=0.6))
        curve_only = self.write("curve.json", {"model": "runs/x/g", "examples": 20, "curve": curve()})
        both = self.write("both.json", {"eval": gated_eval(), "curve": {"model": "m", "curve": curve()}})
        self.assert_png(plot_tradeoff, (900, 600), evaluation, curve_only, both)
        name, arms = plot_tradeoff.load_results(curve_only)
        self.assertEqual((name, arms[0]["name"], arms[0]["macs_mean"]), ("curve", "g", DENSE_MACS * 0.5))
        self.assertEqual(plot_tradeoff.load_results(evaluation)[1][0]["name"], "gated-p4")

    def test_gated_run_directory(self):
        run = self.write_run("run", 2, gated=True)
        self.assert_png(plot_tradeoff, (900, 600), run)
        arm = plot_tradeoff.load_results(run)[1][0]
        self.assertEqual((arm["name"], arm["macs_mean"]), ("run", DENSE_MACS * 0.7))

    def test_dense_eval_with_macs_is_a_dense_point(self):
        dense_eval = {"model": "d/checkpoint.pt", "accuracy": 0.8, "macs_dense": DENSE_MACS, "macs_mean": DENSE_MACS}
        path = self.write("dense.json", dense_eval)
        self.assert_png(plot_tradeoff, (900, 600), path)
        arm = plot_tradeoff.load_results(path)[1][0]
        self.assertEqual((arm["kind"], arm["macs_mean"]), ("dense", DENSE_MACS))

    def test_dense_inputs_have_no_macs(self):
        dense_eval = {"model": "d/checkpoint.pt", "accuracy": 0.8, "per_class": []}
        self.assert_fails(plot_tradeoff, 'dense.json: the evaluation has no "macs_mean"',
                          self.write("dense.json", dense_eval))
        self.assert_fails(plot_tradeoff, 'epoch 1 has no "test_macs_mean"', self.write_run("run", 1, gated=False))
        self.assert_fails(plot_tradeoff, 'other.json: expected compare.py', self.write("other.json", {"x": 1}))


@unittest.skipUnless(HAVE_NUMPY, WHY_NOT_NUMPY)
class CifarTest(FilesTestCase):
    def write_bytes(self, name, data):
        with open(self.path(name), "wb") as f:
            f.write(data)
        return self.path(name)

    def test_plain_gzip_and_directory(self):
        self.write_bytes("test_batch.bin.gz", gzip.compress(cifar_records(10)))
        for source in (self.write_bytes("plain.bin", cifar_records(10)), self.dir):
            labels, images = read_test_batch(source)
            self.assertEqual(list(labels), [i % 10 for i in range(10)])
            self.assertEqual(images.shape, (10, 32, 32, 3))
            # HWC from CHW: pixel (row 0, col 1) of channel 2 is byte 2 * 1024 + 1 of image 3.
            self.assertEqual(images[3, 0, 1, 2], (3 * 7 + 2 * 1024 + 1) % 256)

    def test_bad_batches(self):
        truncated = self.write_bytes("t.bin", cifar_records(2)[:-1])
        with self.assertRaisesRegex(PlotError, "t.bin: 6145 bytes is not a positive multiple of 3073"):
            read_test_batch(truncated)
        with self.assertRaisesRegex(PlotError, "empty.bin: 0 bytes"):
            read_test_batch(self.write_bytes("empty.bin", b""))
        with self.assertRaisesRegex(PlotError, "record 1 has label 10; expected 0..9"):
            read_test_batch(self.write_bytes("l.bin", cifar_records(2, label=lambda i: 10 * i)))
        os.mkdir(self.path("nothing"))
        with self.assertRaisesRegex(PlotError, "nothing: no test_batch.bin or test_batch.bin.gz"):
            read_test_batch(self.path("nothing"))


class PerExampleTest(FilesTestCase):
    def test_columns_are_checked(self):
        evaluation = with_per_example(gated_eval(), n=4)
        self.assertEqual(per_example(evaluation, "e", ("label", "macs"))["label"], [0, 1, 2, 3])
        with self.assertRaisesRegex(PlotError, 'e: no "per_example"'):
            per_example(gated_eval(), "e", ("label",))
        evaluation["per_example"]["prediction"].pop()
        with self.assertRaisesRegex(PlotError, "per_example.prediction has 3 entries but per_example.label has 4"):
            per_example(evaluation, "e", ("label", "prediction"))
        evaluation["per_example"]["mask"][2] = "01x"
        with self.assertRaisesRegex(PlotError, 'per_example.mask.2. is "01x"; expected a string of "0" and "1"'):
            per_example(evaluation, "e", ("mask",))
        evaluation["per_example"]["mask"][2] = "01"
        with self.assertRaisesRegex(PlotError, "masks of different lengths"):
            per_example(evaluation, "e", ("mask",))
        evaluation["per_example"]["label"][0] = True
        with self.assertRaisesRegex(PlotError, "per_example.label.0. is true; expected a class index"):
            per_example(evaluation, "e", ("label",))


class ByClassAndGalleryTest(PlotTestCase):
    def test_layers_by_class(self):
        self.assert_png(plot_layers, (900, 700), self.write("eval.json", with_per_example(gated_eval())),
                        "--by-class")
        rows, names, overall = plot_layers.class_rows(with_per_example(gated_eval(layers=3, maps=3), n=3), "e")
        # Images 0, 1, 2 keep maps (i + j) % 3 != 0: two of three maps in every layer.
        self.assertEqual(names[:3], ["class0", "class1", "class2"])
        self.assertEqual([round(r[0], 6) for r in rows], [round(2 / 3, 6)] * 3)
        self.assertTrue(all(r[5] != r[5] for r in rows))  # no image of class 5: NaN
        self.assertEqual([round(v, 6) for v in overall], [round(2 / 3, 6)] * 3)
        self.assert_fails(plot_layers, 'no "per_example"', self.write("plain.json", gated_eval()), "--by-class")

    def test_gallery_default_and_partial_grid(self):
        data = self.path("test_batch.bin")
        with open(data, "wb") as f:
            f.write(cifar_records(30))
        evaluation = self.write("eval.json", with_per_example(gated_eval()))
        self.assert_png(plot_gallery, plot_gallery.size(4, 8), evaluation, "--data", data)
        self.assertEqual(plot_gallery.size(4, 8), (1200, 750))
        self.assert_png(plot_gallery, (300, 580), evaluation, "--data", self.dir, "--rows", "3", "--cols", "2")
        small = self.write("small.json", with_per_example(gated_eval(), n=5))
        self.assert_png(plot_gallery, (1200, 750), small, "--data", data)  # 5 images, 27 empty cells

    def test_gallery_picks_cheapest_to_costliest(self):
        self.assertEqual(plot_gallery.pick([5, 1, 9, 3, 7], 3), [1, 0, 2])
        self.assertEqual(plot_gallery.pick([2, 1], 8), [1, 0])

    def test_gallery_refuses_other_data(self):
        data = self.path("test_batch.bin")
        with open(data, "wb") as f:
            f.write(cifar_records(30, label=lambda i: (i + 1) % 10))
        evaluation = self.write("eval.json", with_per_example(gated_eval()))
        self.assert_fails(plot_gallery, "test image 29 has label 9 there but 0 in", evaluation, "--data", data)
        with open(data, "wb") as f:
            f.write(cifar_records(20))
        self.assert_fails(plot_gallery, "30 per-example entries but %s has only 20 test images" % data,
                          evaluation, "--data", data)


class DifficultyTest(PlotTestCase):
    def dense(self, n=30, loss=lambda i: 0.1 * i):
        """A dense model's evaluation: every prediction right, per-image losses loss(i)."""
        labels = [i % 10 for i in range(n)]
        return {"accuracy": 1.0, "per_example": {"label": labels, "prediction": labels,
                                                 "loss": [loss(i) for i in range(n)]}}

    def test_bins_accuracy_macs_and_correlation(self):
        static = with_per_example(gated_eval())
        static["per_example"]["macs"] = [DENSE_MACS // 2] * 30
        paths = [self.write("dense.json", self.dense()), self.write("gated.json", with_per_example(gated_eval())),
                 self.write("static.json", static)]
        edges, (dense, gated, fixed) = plot_difficulty.summarise(paths, 3)
        # Bins by the reference loss 0.1 i: images 0-9, 10-19, 20-29; every third prediction of
        # the gated model is wrong (4, 3, 3 per bin), its MACs fall with i.
        self.assertEqual([(round(lo, 6), round(hi, 6)) for lo, hi in edges], [(0, 0.9), (1, 1.9), (2, 2.9)])
        self.assertEqual(dense["accuracy"], [1.0, 1.0, 1.0])
        self.assertIsNone(dense["macs"])
        self.assertEqual([round(a, 6) for a in gated["accuracy"]], [0.6, 0.7, 0.7])
        self.assertEqual(gated["macs"], [DENSE_MACS - 4500, DENSE_MACS - 14500, DENSE_MACS - 24500])
        self.assertAlmostEqual(gated["rho_difficulty"], -1.0)
        self.assertAlmostEqual(gated["rho_own_loss"], -1.0)
        self.assertTrue(fixed["rho_difficulty"] != fixed["rho_difficulty"])  # constant MACs: NaN
        # Masks (i + j) % 3 != 0 repeat every 3 images, the bins every 10: little shared.
        self.assertLess(gated["bits"][0], 0.1)
        self.assertIsNone(dense["bits"])
        self.assert_png(plot_difficulty, (1200, 500), *paths)

    def test_mutual_information(self):
        import numpy as np  # present where matplotlib is (this class is skipped otherwise)
        groups = np.array([0, 0, 1, 1])
        masks = np.array([[1, 1], [1, 0], [0, 1], [0, 0]])  # map 0 is the group, map 1 is not
        self.assertAlmostEqual(plot_difficulty.mutual_information(masks, groups, 2), 0.5)  # (1 + 0) / 2 bits
        self.assertAlmostEqual(plot_difficulty.mutual_information(masks[:, 1:], groups, 2), 0.0)

    def test_ties_share_their_rank(self):
        self.assertEqual(list(plot_difficulty.ranks([3.0, 1.0, 3.0, 2.0])), [3.5, 1.0, 3.5, 2.0])
        self.assertAlmostEqual(plot_difficulty.spearman([1, 2, 3, 4], [10, 20, 20, 40]), 0.9486833, places=6)

    def test_bad_inputs(self):
        dense = self.write("dense.json", self.dense())
        self.assert_fails(plot_difficulty, "needs the reference evaluation and at least one", dense)
        self.assert_fails(plot_difficulty, "--bins 31: needs 1 to 30", dense, dense, "--bins", "31")
        other = self.write("other.json", self.dense(n=20))
        self.assert_fails(plot_difficulty, "other.json: its test images' labels differ from", dense, other)
        no_loss = with_per_example(gated_eval())
        del no_loss["per_example"]["loss"]
        self.assert_fails(plot_difficulty, 'per_example has no "loss" list', dense, self.write("old.json", no_loss))


class CascadeTest(PlotTestCase):
    def evaluation(self, confidence, correct, macs=None):
        """Four images of labels 0-3; prediction right where correct[i]; per-image MACs (gated) or none (dense)."""
        labels = [0, 1, 2, 3]
        columns = {"label": labels, "prediction": [l if ok else (l + 1) % 10 for l, ok in zip(labels, correct)],
                   "loss": [0.1] * 4, "confidence": confidence}
        out = {"accuracy": sum(correct) / 4.0, "per_example": columns}
        if macs is None:
            out["macs_mean"] = 9e6
        else:
            columns["macs"] = macs
        return out

    def test_images_below_the_threshold_take_the_second_models_answer(self):
        first = self.write("first.json", self.evaluation([0.9, 0.4, 0.8, 0.3], [1, 0, 1, 0], macs=[1e6, 2e6, 1e6, 2e6]))
        second = self.write("second.json", self.evaluation([0.5] * 4, [1, 1, 0, 1]))
        out = self.path("cascade.json")
        code, err = self.run_main(cascade, first, second, "--thresholds", "0,0.5,1.01", "--name", "c", "-o", out)
        self.assertEqual(code, 0, err)
        with open(out) as f:
            arm = json.load(f)["arms"][0]
        self.assertEqual((arm["name"], arm["kind"]), ("c", "cascade"))
        none, half, every = arm["curve"]
        self.assertEqual((none["accuracy"], none["macs_mean"], none["escalated"]), (0.5, 1.5e6, 0.0))
        # t = 0.5: images 1 and 3 (confidence 0.4, 0.3) run the second model too, which gets both right.
        self.assertEqual((half["accuracy"], half["macs_mean"], half["escalated"]), (1.0, 1.5e6 + 4.5e6, 0.5))
        self.assertEqual((every["accuracy"], every["macs_mean"]), (0.75, 1.5e6 + 9e6))
        self.assertAlmostEqual(cascade.accuracy_at(arm["curve"], 3.75e6), 0.75)  # halfway from t = 0 to t = 0.5
        self.assertIsNone(cascade.accuracy_at(arm["curve"], 1e6))
        self.assert_png(plot_tradeoff, (900, 600), out, second)

    def test_bad_inputs(self):
        first = self.write("first.json", self.evaluation([0.9] * 4, [1] * 4))
        other = self.evaluation([0.9] * 4, [1] * 4)
        other["per_example"]["label"] = [3, 2, 1, 0]
        other["per_example"]["prediction"] = [3, 2, 1, 0]
        code, err = self.run_main(cascade, first, self.write("other.json", other), "-o", self.path("c.json"))
        self.assertEqual((code, err), (1, "cascade.py: the two evaluations are not of the same test images "
                                          "(their labels differ)\n"))
        old = self.evaluation([0.9] * 4, [1] * 4)
        del old["per_example"]["confidence"]
        code, err = self.run_main(cascade, self.write("old.json", old), first, "-o", self.path("c.json"))
        self.assertEqual(code, 1)
        self.assertIn('old.json: per_example has no "confidence" list', err)


if __name__ == "__main__":
    unittest.main()

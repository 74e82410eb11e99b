"""Tests of bench/pytorch_train.py, the PyTorch reference loop: it must build the network
mapgate builds (the parameter counts `mapgate flops --json` prints for these
architectures) and report what it measured. Needs PyTorch (Debian: python3-torch, which
tools/install-deps.sh installs); skipped, saying so, where it is missing.

    python3 -m unittest discover -s bench -p 'test_*.py' -v
"""
import contextlib
import io
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import torch  # noqa: F401
    import pytorch_train
except ImportError:  # pragma: no cover - depends on the machine
    pytorch_train = None


@unittest.skipIf(pytorch_train is None, "PyTorch is not installed (Debian: python3-torch)")
class PyTorchReference(unittest.TestCase):
    def test_network_is_mapgates(self):
        # `mapgate flops --depth D --growth 12 --json`: params 270706 (D = 22), 1019722 (D = 40).
        for depth, params in ((22, 270706), (40, 1019722)):
            model = pytorch_train.DenseNet(depth, 12)
            self.assertEqual(sum(p.numel() for p in model.parameters()), params, depth)
        self.assertEqual(pytorch_train.DenseNet(10, 4)(torch.zeros(2, 3, 32, 32)).shape, (2, 10))

    def test_reports_each_repeat_and_the_median(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            pytorch_train.main(["--depth", "7", "--growth", "2", "--batch", "4", "--threads", "1",
                                "--steps", "1", "--repeats", "3", "--json"])
        result = json.loads(out.getvalue())
        self.assertEqual(len(result["images_per_s"]), 3)
        self.assertTrue(all(r > 0 for r in result["images_per_s"]))
        self.assertEqual(result["median_images_per_s"], sorted(result["images_per_s"])[1])

    def test_bad_arguments_name_the_flag(self):
        cases = ((["--depth", "23", "--steps", "1", "--repeats", "1"], "--depth 23"),  # the model's check
                 (["--steps", "0"], "--steps 0"))  # argparse's
        for argv, flag in cases:
            err = io.StringIO()
            with contextlib.redirect_stderr(err), self.assertRaises(SystemExit) as exit_:
                pytorch_train.main(argv)
            self.assertNotIn(exit_.exception.code, (0, None))
            self.assertIn(flag, err.getvalue() + str(exit_.exception.code))

if __name__ == "__main__":
    unittest.main()

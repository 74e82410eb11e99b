"""tools/export_onnx.py on tiny weight files written here with tools/weightfile.py (plain
and BC, odd image size):
the ONNX graph, run by a small numpy evaluator of its ops, equals a numpy DenseNet forward
written directly from the tensors; bad files give one line naming the file. Needs numpy and
onnx (Debian: python3-numpy, python3-onnx); skipped, saying so, where the interpreter lacks
them (a GPU machine's own Python, say)."""
import io
import os
import tempfile
import unittest
from contextlib import redirect_stderr, redirect_stdout

try:
    import numpy as np
    import onnx
    from onnx import numpy_helper

    import export_onnx
    import weightfile
    HAVE_ONNX, WHY = True, ""
except ImportError as e:
    HAVE_ONNX, WHY = False, "%s; run the tests with Debian's python3 (python3-numpy, python3-onnx)" % e


def tiny_file(path, bc, seed):
    """A DenseNet with 2 layers per block, 2 x 9 x 9 inputs (9 -> 4 -> 2), 4 classes."""
    header = weightfile.dense_header(depth=16 if bc else 10, growth=3, bc=bc, classes=4, in_channels=2, image_size=9)
    tensors = weightfile.random_tensors(header, np.random.default_rng(seed))
    weightfile.write_weights(path, header, tensors)
    return tensors


# --- numpy, float64: the ops the exporter uses, and a DenseNet written from the tensors ---
def conv(x, w):  # x (N, C, H, W), w (O, C, K, K), stride 1, zero padding K // 2
    kernel = w.shape[2]
    p = kernel // 2
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    h, wd = x.shape[2], x.shape[3]
    return sum(np.einsum("nchw,oc->nohw", xp[:, :, dy:dy + h, dx:dx + wd], w[:, :, dy, dx])
               for dy in range(kernel) for dx in range(kernel))


def batch_norm(x, g, b, m, v, eps):
    r = lambda a: a.reshape(1, -1, 1, 1)
    return (x - r(m)) / np.sqrt(r(v) + eps) * r(g) + r(b)


def avg_pool(x):  # 2x2, stride 2, floor
    h, w = x.shape[2] // 2 * 2, x.shape[3] // 2 * 2
    x = x[:, :, :h, :w]
    return (x[:, :, 0::2, 0::2] + x[:, :, 1::2, 0::2] + x[:, :, 0::2, 1::2] + x[:, :, 1::2, 1::2]) / 4


def run_onnx(model, image, masks=None):
    """A numpy evaluator of exactly the ops export_onnx writes."""
    values = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    values = {name: v.astype(np.float64) if v.dtype == np.float32 else v for name, v in values.items()}
    values["image"], values["masks"] = image, masks
    for node in model.graph.node:
        a = {at.name: at for at in node.attribute}
        x = [values[i] for i in node.input]
        if node.op_type == "Conv":
            assert list(a["pads"].ints) == [x[1].shape[2] // 2] * 4, node.name
            y = conv(x[0], x[1])
        elif node.op_type == "BatchNormalization":
            y = batch_norm(*x, a["epsilon"].f)
        elif node.op_type == "Relu":
            y = np.maximum(x[0], 0)
        elif node.op_type == "Concat":
            y = np.concatenate(x, axis=a["axis"].i)
        elif node.op_type == "AveragePool":
            assert list(a["kernel_shape"].ints) == [2, 2] and list(a["strides"].ints) == [2, 2], node.name
            y = avg_pool(x[0])
        elif node.op_type == "GlobalAveragePool":
            y = x[0].mean(axis=(2, 3), keepdims=True)
        elif node.op_type == "Flatten":
            y = x[0].reshape(x[0].shape[0], -1)
        elif node.op_type == "Mul":
            y = x[0] * x[1]
        elif node.op_type == "Shape":
            y = np.array(x[0].shape, np.int64)
        elif node.op_type == "Slice":
            y = x[0][x[1][0]:x[2][0]]
        elif node.op_type == "ConstantOfShape":
            y = np.full(x[0], numpy_helper.to_array(a["value"].t)[0], np.float64)
        elif node.op_type == "Gather":
            y = np.take(x[0], x[1], axis=a["axis"].i)
        elif node.op_type == "Unsqueeze":
            y = np.expand_dims(x[0], tuple(x[1]))
        elif node.op_type == "Gemm":
            assert a["transB"].i == 1, node.name
            y = x[0] @ x[1].T + x[2]
        else:
            raise AssertionError(f"unexpected op {node.op_type}")
        values[node.output[0]] = y
    return values["logits"]


def densenet_forward(t, bc, image, masks=None, eps=1e-5):
    """Two layers per block; masks (N, 6, k) or None: every map computed, then masked, and
    each BN-ReLU output masked by the maps it reads (tests/engine/test_engine.cpp's Naive)."""
    t = {name: v.astype(np.float64) for name, v in t.items()}
    n_img = image.shape[0]

    def bn_relu(x, n, keep):
        y = np.maximum(batch_norm(x, *(t[f"{n}.{p}"] for p in ("weight", "bias", "running_mean", "running_var")),
                                  eps), 0)
        return y * keep.reshape(n_img, -1, 1, 1)

    x = conv(image, t["stem.weight"])
    keep, layer = np.ones((n_img, x.shape[1])), 0
    for b in (1, 2, 3):
        for n in (f"block{b}.0", f"block{b}.1"):
            if bc:
                h = conv(bn_relu(x, n + ".norm1", keep), t[n + ".conv1.weight"])
                y = conv(bn_relu(h, n + ".norm2", np.ones((n_img, h.shape[1]))), t[n + ".conv2.weight"])
            else:
                y = conv(bn_relu(x, n + ".norm", keep), t[n + ".conv.weight"])
            m = masks[:, layer] if masks is not None else np.ones((n_img, y.shape[1]))
            x = np.concatenate([x, y * m.reshape(n_img, -1, 1, 1)], axis=1)
            keep, layer = np.concatenate([keep, m], axis=1), layer + 1
        if b < 3:
            x = avg_pool(conv(bn_relu(x, f"trans{b}.norm", keep), t[f"trans{b}.conv.weight"]))
            keep = np.ones((n_img, x.shape[1]))
    return bn_relu(x, "norm", keep).mean(axis=(2, 3)) @ t["classifier.weight"].T + t["classifier.bias"]


@unittest.skipUnless(HAVE_ONNX, WHY)
class ExportOnnx(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.dir.cleanup()

    def test_graph_computes_the_densenet(self):
        for bc in (False, True):
            with self.subTest(bc=bc):
                path = os.path.join(self.dir.name, "tiny.bin")
                tensors = tiny_file(path, bc, seed=3)
                # stem, 6 layers of 5 tensors (BC 10), 2 transitions of 5, norm 4, classifier 2
                self.assertEqual(len(tensors), 77 if bc else 47)
                model = export_onnx.build_model(*export_onnx.read_weights(path))
                self.assertEqual(model.graph.input[0].name, "image")
                self.assertEqual(model.graph.output[0].name, "logits")
                image = np.random.default_rng(4).normal(0, 1, (2, 2, 9, 9))
                got, want = run_onnx(model, image), densenet_forward(tensors, bc, image)
                self.assertEqual(got.shape, (2, 4))
                np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
                # The file's tensors go in unchanged (float32).
                init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
                np.testing.assert_array_equal(init["stem.weight"], tensors["stem.weight"])

    def test_masked_graph_computes_then_masks(self):
        for bc in (False, True):
            with self.subTest(bc=bc):
                path = os.path.join(self.dir.name, "tiny.bin")
                tensors = tiny_file(path, bc, seed=5)
                model = export_onnx.build_model(*export_onnx.read_weights(path), masks=True)
                self.assertEqual([i.name for i in model.graph.input], ["image", "masks"])
                rng = np.random.default_rng(6)
                image = rng.normal(0, 1, (3, 2, 9, 9))
                for keep in (1.0, 0.5, 0.0):
                    masks = (rng.uniform(size=(3, 6, 3)) < keep).astype(np.float64)
                    np.testing.assert_allclose(run_onnx(model, image, masks),
                                               densenet_forward(tensors, bc, image, masks), rtol=1e-9, atol=1e-9)
                    if keep == 1.0:  # all on: the dense network
                        np.testing.assert_allclose(run_onnx(model, image, masks), densenet_forward(tensors, bc, image),
                                                   rtol=1e-9, atol=1e-9)

    def test_gated_file_round_trips_and_its_gates_stay_out_of_the_graph(self):
        header = weightfile.dense_header(depth=10, growth=3, classes=4, in_channels=2, image_size=9, gated=True)
        tensors = weightfile.random_tensors(header, np.random.default_rng(2))
        # layer 5 (block 3, second) reads 16 + 5 x 3 maps: without compression transitions keep them all
        self.assertEqual(tensors["gates.5.fc.weight"].shape, (3, 31))
        path = os.path.join(self.dir.name, "gated.bin")
        weightfile.write_weights(path, header, tensors)
        got_header, got = weightfile.read_weights(path)
        self.assertEqual(got_header, dict(header, tensor_count=len(tensors)))
        self.assertEqual(list(got), list(tensors))
        for name in tensors:
            np.testing.assert_array_equal(got[name], tensors[name])
        model = export_onnx.build_model(got_header, got)
        self.assertFalse([i.name for i in model.graph.initializer if i.name.startswith("gates.")])

    def test_main_writes_a_loadable_model(self):
        path, out = os.path.join(self.dir.name, "tiny.bin"), os.path.join(self.dir.name, "tiny.onnx")
        tiny_file(path, False, seed=1)
        with redirect_stdout(io.StringIO()):
            self.assertEqual(export_onnx.main([path, out]), 0)
        onnx.checker.check_model(onnx.load(out))

    def assert_fails_naming(self, path, *substrings):
        err = io.StringIO()
        with redirect_stderr(err):
            self.assertEqual(export_onnx.main([path, os.path.join(self.dir.name, "out.onnx")]), 1)
        message = err.getvalue()
        self.assertEqual(message.count("\n"), 1, message)
        for s in (f'"{path}"',) + substrings:
            self.assertIn(s, message)

    def test_bad_files_name_the_file(self):
        self.assert_fails_naming(os.path.join(self.dir.name, "missing.bin"), "cannot open")
        bad = os.path.join(self.dir.name, "bad.bin")
        with open(bad, "wb") as f:
            f.write(b"NOTMAPGATE")
        self.assert_fails_naming(bad, "not a mapgate weight file")
        path = os.path.join(self.dir.name, "tiny.bin")
        tiny_file(path, False, seed=1)
        with open(path, "rb") as f:
            data = f.read()
        with open(bad, "wb") as f:
            f.write(data[:-10])
        self.assert_fails_naming(bad, "truncated")
        header, tensors = weightfile.read_weights(path)
        del tensors["trans1.conv.weight"]
        weightfile.write_weights(path, header, tensors)
        self.assert_fails_naming(path, "trans1.conv.weight", "is missing")


if __name__ == "__main__":
    unittest.main()

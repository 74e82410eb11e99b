"""The two runtimes that tools/ort_check.py and tools/ort_bench.py hold against each other,
driven from Python: the mapgate engine through libmapgate's C interface (ctypes), and ONNX
Runtime through bench/ort_server.js (Node, the onnxruntime-node package). Also CIFAR-10's
test images, normalised as the engine's data loader does (float32 throughout)."""
import ctypes
import gzip
import json
import os
import subprocess
import time

import numpy as np

MODE_GATED, MODE_DENSE = 0, 1


class MapgateInfo(ctypes.Structure):
    _fields_ = [("in_channels", ctypes.c_int), ("image_size", ctypes.c_int), ("num_classes", ctypes.c_int),
                ("layers", ctypes.c_int), ("growth", ctypes.c_int), ("gated", ctypes.c_int),
                ("threshold", ctypes.c_double)]


class Engine:
    """One libmapgate handle on a weight file."""

    def __init__(self, lib_path, weights):
        self.lib = lib = ctypes.CDLL(lib_path)
        lib.mapgate_last_error.restype = ctypes.c_char_p
        lib.mapgate_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                                    ctypes.c_void_p, ctypes.c_void_p]
        lib.mapgate_free.argtypes = [ctypes.c_void_p]
        self.handle = ctypes.c_void_p()
        self.check(lib.mapgate_load(weights.encode(), ctypes.byref(self.handle)))
        self.info = MapgateInfo()
        self.check(lib.mapgate_get_info(self.handle, ctypes.byref(self.info)))

    def __del__(self):
        if getattr(self, "handle", None):
            self.lib.mapgate_free(self.handle)

    def check(self, status):
        if status != 0:
            raise RuntimeError(self.lib.mapgate_last_error().decode())

    def configure(self, mode, threads):
        self.check(self.lib.mapgate_set_mode(self.handle, mode))
        self.check(self.lib.mapgate_set_threads(self.handle, threads))

    def run(self, images):
        """images (n, C, S, S) float32 -> logits (n, classes), masks (n, layers, growth) 0/1,
        MACs (n)."""
        images = np.ascontiguousarray(images, dtype=np.float32)
        n = images.shape[0]
        logits = np.empty((n, self.info.num_classes), np.float32)
        masks = np.empty((n, self.info.layers, self.info.growth), np.uint8)
        macs = np.empty(n, np.int64)
        self.check(self.lib.mapgate_run(self.handle, images.ctypes.data, n, logits.ctypes.data, masks.ctypes.data,
                                        macs.ctypes.data))
        return logits, masks, macs

    def time(self, images, reps):
        """Seconds per call of `reps` calls on the same batch (no outputs but the logits)."""
        images = np.ascontiguousarray(images, dtype=np.float32)
        logits = np.empty((images.shape[0], self.info.num_classes), np.float32)
        run, handle, n = self.lib.mapgate_run, self.handle, images.shape[0]
        seconds = []
        for _ in range(reps):
            start = time.perf_counter()
            status = run(handle, images.ctypes.data, n, logits.ctypes.data, None, None)
            seconds.append(time.perf_counter() - start)
            self.check(status)
        return seconds


class OrtServer:
    """bench/ort_server.js as a child process; requests as in its header."""

    def __init__(self, ort_dir, node="node"):
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "ort_server.js")
        self.proc = subprocess.Popen([node, script, ort_dir], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)

    def request(self, **req):
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"bench/ort_server.js exited ({self.proc.wait()}) on {req['op']}")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"onnxruntime: {req['op']}: {reply['error']}")
        return reply

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def cifar10_test(data_dir, limit=0):
    """(labels (n,), pixels (n, 3, 32, 32) uint8) of test_batch.bin or test_batch.bin.gz."""
    path = os.path.join(data_dir, "test_batch.bin")
    opener = open if os.path.exists(path) else gzip.open
    path = path if os.path.exists(path) else path + ".gz"
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) % 3073:
        raise ValueError(f'cifar10 "{path}": {len(data)} bytes is not a multiple of 3073 (1 label + 3072 pixels)')
    records = np.frombuffer(data, np.uint8).reshape(-1, 3073)
    if limit:
        records = records[:limit]
    return records[:, 0].astype(np.int64), records[:, 1:].reshape(-1, 3, 32, 32)


def normalise(pixels, mean, std):
    """(pixel / 255 - mean[c]) / std[c] in float32, as src/data/loader.cpp's table."""
    x = pixels.astype(np.float32) / np.float32(255)
    m = np.asarray(mean, np.float32).reshape(1, -1, 1, 1)
    s = np.asarray(std, np.float32).reshape(1, -1, 1, 1)
    return np.ascontiguousarray((x - m) / s, dtype=np.float32)

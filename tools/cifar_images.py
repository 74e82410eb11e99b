"""Reads CIFAR-10's binary test batch for the pictures: test_batch.bin, plain or gzip-compressed
(as mapgate's own reader, src/data/cifar.cpp). A record is 1 label byte then 3072 pixel
bytes, channel-major (1024 red, 1024 green, 1024 blue; rows of 32).
"""
import gzip
import os

import numpy as np

from mapgate_files import PlotError

RECORD = 1 + 3 * 32 * 32
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def default_data_dir():
    """Where mapgate looks without --data (src/data/fetch.cpp): $MAPGATE_DATA, else the cache."""
    if os.environ.get("MAPGATE_DATA"):
        return os.environ["MAPGATE_DATA"]
    cache = os.environ.get("XDG_CACHE_HOME", "")
    if not cache.startswith("/"):  # XDG: relative values are ignored
        cache = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "mapgate", "cifar10")


def test_batch_file(path):
    """path itself, or the test batch inside a directory (test_batch.bin or test_batch.bin.gz)."""
    if not os.path.isdir(path):
        return path
    for name in ("test_batch.bin", "test_batch.bin.gz"):
        if os.path.exists(os.path.join(path, name)):
            return os.path.join(path, name)
    raise PlotError("%s: no test_batch.bin or test_batch.bin.gz (expected CIFAR-10's binary version)" % path)


def read_test_batch(path):
    """(labels, images) of a CIFAR-10 binary batch: labels int array (n,), images uint8 (n, 32, 32, 3)."""
    path = test_batch_file(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
    except (OSError, EOFError) as e:
        raise PlotError("%s: cannot read (%s)" % (path, getattr(e, "strerror", None) or e))
    if not data or len(data) % RECORD:
        raise PlotError("cifar10 %s: %d bytes is not a positive multiple of %d (1 label + 3072 pixels)"
                        % (path, len(data), RECORD))
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD)
    labels = records[:, 0].astype(int)
    if labels.max() >= len(CLASSES):
        first = int(np.argmax(labels >= len(CLASSES)))
        raise PlotError("cifar10 %s: record %d has label %d; expected 0..9" % (path, first, labels[first]))
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # CHW -> HWC for imshow
    return labels, images

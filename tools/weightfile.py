"""mapgate weight files (docs/weight-format.md) in Python: read, write, and random weights
for benchmarks and tests. Must match src/engine/weights.cpp byte for byte."""
import json
import struct

import numpy as np

MAGIC = b"MAPGATE\0"
VERSION = 1


class WeightFileError(Exception):
    pass


def read_weights(path):
    """Returns (header dict, {name: float32 array}); WeightFileError names the file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise WeightFileError(f'weights "{path}": cannot open ({e.strerror})')
    pos = 0

    def take(n, what):
        nonlocal pos
        if len(data) - pos < n:
            raise WeightFileError(f'weights "{path}": truncated: {what} needs {n} bytes at offset {pos}, '
                                  f"the file has {len(data)} bytes")
        pos += n
        return data[pos - n:pos]

    def u32(what):
        return struct.unpack("<I", take(4, what))[0]

    magic = take(8, "the magic")
    if magic != MAGIC:
        raise WeightFileError(f'weights "{path}": not a mapgate weight file (magic {magic!r}, expected {MAGIC!r})')
    version = u32("the version")
    if version != VERSION:
        raise WeightFileError(f'weights "{path}": this file is version {version}, this script reads version {VERSION}')
    header = json.loads(take(u32("the header size"), "the JSON header"))
    tensors = {}
    for i in range(header["tensor_count"]):
        name = take(u32(f"tensor {i}'s name size"), f"tensor {i}'s name").decode("ascii")
        shape = [u32(f'tensor "{name}"\'s shape') for _ in range(u32(f'tensor "{name}"\'s rank'))]
        count = int(np.prod(shape)) if shape else 1
        tensors[name] = np.frombuffer(take(4 * count, f'tensor "{name}"\'s data'), dtype="<f4").reshape(shape)
    if pos != len(data):
        raise WeightFileError(f'weights "{path}": {len(data) - pos} unexpected bytes after the last tensor')
    return header, tensors


def write_weights(path, header, tensors):
    """Writes header (tensor_count is set here) and tensors, as `mapgate export` does."""
    header = dict(header, tensor_count=len(tensors))
    text = json.dumps(header).encode()
    out = [MAGIC, struct.pack("<II", VERSION, len(text)), text]
    for name, v in tensors.items():
        v = np.asarray(v, dtype="<f4")
        out += [struct.pack("<I", len(name)), name.encode("ascii"), struct.pack("<I", v.ndim),
                struct.pack(f"<{v.ndim}I", *v.shape), v.tobytes()]
    with open(path, "wb") as f:
        f.write(b"".join(out))


def dense_header(depth, growth, bc=False, classes=10, in_channels=3, image_size=32, gated=False):
    """The header of a DenseNet (gated: with a gate per dense layer); CIFAR-10's normalisation."""
    return {"format": "mapgate-weights",
            "architecture": {"depth": depth, "growth": growth, "bc": bc, "compression": 0.5 if bc else 1.0,
                             "num_classes": classes, "in_channels": in_channels, "image_size": image_size},
            "gates": {"gated": gated, "threshold": 0.5, "p_clamp": 0.01},
            "normalization": {"mean": [0.4914, 0.4822, 0.4465][:in_channels] + [0.5] * max(0, in_channels - 3),
                              "std": [0.2470, 0.2435, 0.2616][:in_channels] + [0.25] * max(0, in_channels - 3)},
            "batch_norm_eps": 1e-5}


def random_tensors(header, rng):
    """Every tensor of the header's DenseNet, in network order: Kaiming-normal
    convolutions, BN statistics near (not at) the identity; gates (if any) spread so that
    some maps are kept and some not, differently for different inputs."""
    arch = header["architecture"]
    k, bc = arch["growth"], bool(arch["bc"])
    t = {}

    def bn(name, n):
        t[name + ".weight"] = rng.uniform(0.75, 1.25, n)
        t[name + ".bias"] = rng.normal(0, 0.1, n)
        t[name + ".running_mean"] = rng.normal(0, 0.1, n)
        t[name + ".running_var"] = rng.uniform(0.5, 1.5, n)

    def conv(name, shape):
        t[name] = rng.normal(0, np.sqrt(2.0 / (shape[0] * shape[2] * shape[3])), shape)

    ch = 2 * k if bc else 16
    conv("stem.weight", (ch, arch["in_channels"], 3, 3))
    gate_inputs = []
    for b in (1, 2, 3):
        for i in range((arch["depth"] - 4) // (6 if bc else 3)):
            name = f"block{b}.{i}"
            gate_inputs.append(ch)
            if bc:
                bn(name + ".norm1", ch)
                conv(name + ".conv1.weight", (4 * k, ch, 1, 1))
                bn(name + ".norm2", 4 * k)
                conv(name + ".conv2.weight", (k, 4 * k, 3, 3))
            else:
                bn(name + ".norm", ch)
                conv(name + ".conv.weight", (k, ch, 3, 3))
            ch += k
        if b < 3:
            out = int(arch["compression"] * ch)
            bn(f"trans{b}.norm", ch)
            conv(f"trans{b}.conv.weight", (out, ch, 1, 1))
            ch = out
    bn("norm", ch)
    t["classifier.weight"] = rng.normal(0, np.sqrt(1.0 / ch), (arch["num_classes"], ch))
    t["classifier.bias"] = rng.normal(0, 0.1, arch["num_classes"])
    if header["gates"]["gated"]:
        for layer, c_in in enumerate(gate_inputs):  # as random_weights in src/engine/weights.cpp
            t[f"gates.{layer}.fc.weight"] = rng.normal(0, 4 / np.sqrt(c_in), (k, c_in))
            t[f"gates.{layer}.fc.bias"] = rng.normal(0, 0.5, k)
    return {name: v.astype(np.float32) for name, v in t.items()}

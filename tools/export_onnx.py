#!/usr/bin/env python3
"""Writes the dense network of a mapgate weight file as an ONNX model.

Usage:
    /usr/bin/python3 tools/export_onnx.py WEIGHTS.bin OUT.onnx [--masks] [--opset 13]

The weight file is read by tools/weightfile.py (docs/weight-format.md); the graph is the plain
DenseNet that the engine runs in dense mode (Engine, EngineMode::kDense; gates, if any,
are left out): stem conv3x3; per dense layer BN-ReLU-conv3x3 (BC: BN-ReLU-conv1x1 to 4k,
BN-ReLU-conv3x3) concatenated after its input; transitions BN-ReLU-conv1x1-avgpool2x2
(floor); head BN-ReLU-global average pool-linear. Input "image" (N, C, S, S), normalised
as the file says: (pixel / 255 - mean) / std; output "logits" (N, classes).
--masks adds an input "masks" (N, layers, growth) of 0/1 and computes what the engine
computes under those masks, the compute-then-mask semantics of forward_gated (and of the
naive forward in tests/engine/test_engine.cpp): each layer's new maps are multiplied by
its mask, and every BN-ReLU output by the masks of the maps it reads (1 for stem and
transition maps). With the masks the engine reports, it reproduces its gated logits.
Needs Debian's python3-onnx and python3-numpy; no PyTorch.
"""
import argparse
import json
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from weightfile import WeightFileError, read_weights


class GraphBuilder:
    """Nodes and initializers of one graph; every value gets a fresh name."""

    def __init__(self, tensors, eps):
        self.tensors, self.eps = tensors, eps
        self.nodes, self.initializers, self.count = [], {}, 0

    def weight(self, name):
        if name not in self.initializers:
            self.initializers[name] = numpy_helper.from_array(np.ascontiguousarray(self.tensors[name]), name)
        return name

    def op(self, op_type, inputs, **attrs):
        self.count += 1
        out = f"{op_type.lower()}_{self.count}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def constant(self, name, values):
        if name not in self.initializers:
            self.initializers[name] = numpy_helper.from_array(np.asarray(values, np.int64), name)
        return name

    def bn_relu(self, x, prefix, keep=None):
        """ReLU(BN(x)), times keep (N, C, 1, 1) if given."""
        names = [self.weight(f"{prefix}.{p}") for p in ("weight", "bias", "running_mean", "running_var")]
        y = self.op("Relu", [self.op("BatchNormalization", [x] + names, epsilon=self.eps)])
        return self.op("Mul", [y, keep]) if keep else y

    def ones(self, channels):
        """(N, channels, 1, 1) of 1.0, N the batch of "image"."""
        batch = self.op("Slice", [self.op("Shape", ["image"]), self.constant("zero", [0]), self.constant("one", [1])])
        shape = self.op("Concat", [batch, self.constant(f"shape_{channels}", [channels, 1, 1])], axis=0)
        return self.op("ConstantOfShape", [shape], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0]))

    def layer_mask(self, layer):
        """masks[:, layer, :] as (N, growth, 1, 1)."""
        row = self.op("Gather", ["masks", self.constant(f"layer_{layer}", layer)], axis=1)
        return self.op("Unsqueeze", [row, self.constant("axes_23", [2, 3])])

    def conv(self, x, name):
        kernel = self.tensors[name].shape[2]
        return self.op("Conv", [x, self.weight(name)], kernel_shape=[kernel, kernel], pads=[kernel // 2] * 4)


def dense_layer(g, x, name, bc, keep):
    if bc:  # BN-ReLU-conv1x1 -> 4k (all kept), BN-ReLU-conv3x3 -> k
        y = g.conv(g.bn_relu(x, name + ".norm1", keep), name + ".conv1.weight")
        return g.conv(g.bn_relu(y, name + ".norm2"), name + ".conv2.weight")
    return g.conv(g.bn_relu(x, name + ".norm", keep), name + ".conv.weight")


def build_model(header, tensors, opset=13, masks=False):
    """The dense DenseNet of a weight file (header, tensors from read_weights) as ONNX;
    masks: with the "masks" input (module docstring)."""
    arch = header["architecture"]
    bc = bool(arch["bc"])
    layers_per_block = (arch["depth"] - 4) // (6 if bc else 3)
    g = GraphBuilder(tensors, float(header["batch_norm_eps"]))
    x = g.op("Conv", ["image", g.weight("stem.weight")], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    keep = g.ones(tensors["stem.weight"].shape[0]) if masks else None  # masks of x's maps
    layer = 0
    for b in range(1, 4):
        for i in range(layers_per_block):
            y = dense_layer(g, x, f"block{b}.{i}", bc, keep)
            if masks:
                mask = g.layer_mask(layer)
                y = g.op("Mul", [y, mask])
                keep = g.op("Concat", [keep, mask], axis=1)
            x = g.op("Concat", [x, y], axis=1)
            layer += 1
        if b < 3:
            conv = f"trans{b}.conv.weight"
            y = g.conv(g.bn_relu(x, f"trans{b}.norm", keep), conv)
            x = g.op("AveragePool", [y], kernel_shape=[2, 2], strides=[2, 2])  # ceil_mode 0: floor
            keep = g.ones(tensors[conv].shape[0]) if masks else None
    pooled = g.op("Flatten", [g.op("GlobalAveragePool", [g.bn_relu(x, "norm", keep)])], axis=1)
    g.nodes.append(helper.make_node("Gemm", [pooled, g.weight("classifier.weight"), g.weight("classifier.bias")],
                                    ["logits"], name="classifier", transB=1))
    c, s, k = arch["in_channels"], arch["image_size"], arch["num_classes"]
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", c, s, s])]
    if masks:
        inputs.append(helper.make_tensor_value_info("masks", TensorProto.FLOAT, ["N", layer, arch["growth"]]))
    graph = helper.make_graph(g.nodes, "mapgate_densenet", inputs,
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", k])],
                              initializer=list(g.initializers.values()))
    kind = f"DenseNet-{arch['depth']}{'-BC' if bc else ''} k={arch['growth']}"
    model = helper.make_model(graph, producer_name="mapgate tools/export_onnx.py",
                              doc_string=kind + (", under given masks" if masks else ", dense"),
                              opset_imports=[helper.make_opsetid("", opset)])
    norm = header["normalization"]
    helper.set_model_props(model, {"input": "(pixel / 255 - mean) / std per channel",
                                   "mean": json.dumps(norm["mean"]), "std": json.dumps(norm["std"])})
    onnx.checker.check_model(model)
    return model


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("weights", help="a mapgate weight file (mapgate export)")
    parser.add_argument("out", help="the ONNX model to write")
    parser.add_argument("--masks", action="store_true", help='add the input "masks" (N, layers, growth)')
    parser.add_argument("--opset", type=int, default=13, help="ONNX opset (default 13)")
    args = parser.parse_args(argv)
    try:
        header, tensors = read_weights(args.weights)
        model = build_model(header, tensors, args.opset, args.masks)
    except WeightFileError as e:
        print(f"export_onnx: {e}", file=sys.stderr)
        return 1
    except KeyError as e:
        print(f'export_onnx: weights "{args.weights}": {e} is missing (not written by mapgate export?)',
              file=sys.stderr)
        return 1
    onnx.save(model, args.out)
    print(f"{args.out}: {model.doc_string}, {len(model.graph.node)} nodes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

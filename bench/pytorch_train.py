#!/usr/bin/env python3
"""The same DenseNet trained by PyTorch from Python: the loop users would run instead.

Reference for docs/perf.md and docs/scale.md. It builds the network mapgate builds
(src/model/densenet.cpp: non-BC DenseNet, a 16-map 3x3 stem, BN-ReLU-conv3x3 dense layers,
BN-ReLU-conv1x1 + 2x2 average-pool transitions, BN-ReLU, global pooling and a linear
classifier; convolutions without bias, Kaiming-normal fan-out initialisation) and times
SGD steps (Nesterov 0.9, weight decay 1e-4, lr 0.1) on one fixed random CIFAR-shaped
batch, with one host sync per step (the loss read back), exactly as the bare LibTorch
loop of bench/train_throughput.cpp does. Prints one line per repeat and the median:

    python3 bench/pytorch_train.py --depth 22 --growth 12 --batch 64 --threads 2
    python3 bench/pytorch_train.py --device cuda --depth 40 --batch 64
"""

import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class DenseLayer(nn.Module):
    def __init__(self, channels, growth):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels)
        self.conv = nn.Conv2d(channels, growth, 3, padding=1, bias=False)

    def forward(self, x):
        return torch.cat([x, self.conv(F.relu(self.norm(x)))], 1)


class Transition(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels)
        self.conv = nn.Conv2d(channels, channels, 1, bias=False)

    def forward(self, x):
        return F.avg_pool2d(self.conv(F.relu(self.norm(x))), 2)


class DenseNet(nn.Module):
    """Non-BC DenseNet of depth 3n + 4 (compression 1), as mapgate's DenseNetConfig."""

    def __init__(self, depth, growth, classes=10):
        super().__init__()
        if (depth - 4) % 3:
            raise ValueError("--depth %d: expected 3n + 4" % depth)
        layers = (depth - 4) // 3
        channels = 16
        parts = [nn.Conv2d(3, channels, 3, padding=1, bias=False)]
        for block in range(3):
            for _ in range(layers):
                parts.append(DenseLayer(channels, growth))
                channels += growth
            if block < 2:
                parts.append(Transition(channels))
        self.features = nn.Sequential(*parts)
        self.norm = nn.BatchNorm2d(channels)
        self.classifier = nn.Linear(channels, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.classifier.bias)

    def forward(self, x):
        x = F.relu(self.norm(self.features(x)))
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def images_per_second(model, optimizer, images, labels, steps):
    """Images/s of `steps` SGD steps on one fixed batch, one host sync per step."""
    if images.is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        loss.item()
    return images.shape[0] * steps / (time.perf_counter() - start)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--depth", type=int, default=22, help="3n + 4 (default 22)")
    p.add_argument("--growth", type=int, default=12, help="growth rate k (default 12)")
    p.add_argument("--batch", type=int, default=64, help="mini-batch size (default 64)")
    p.add_argument("--threads", type=int, default=2, help="intra-op threads (default 2)")
    p.add_argument("--steps", type=int, default=10, help="steps per measurement (default 10)")
    p.add_argument("--repeats", type=int, default=5, help="measurements (default 5)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--json", action="store_true", help="one JSON object at the end instead of text")
    args = p.parse_args(argv)
    for name in ("depth", "growth", "batch", "threads", "steps", "repeats"):
        if getattr(args, name) < 1:
            p.error("--%s %d: expected >= 1" % (name, getattr(args, name)))
    if args.device != "cpu" and not torch.cuda.is_available():
        p.error("--device %s: this PyTorch sees no CUDA device" % args.device)
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    try:
        model = DenseNet(args.depth, args.growth).to(device).train()
    except ValueError as e:
        sys.exit("pytorch_train.py: %s" % e)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    images = torch.randn(args.batch, 3, 32, 32, device=device)
    labels = torch.randint(0, 10, (args.batch,), device=device)
    images_per_second(model, optimizer, images, labels, 2)  # warm-up: allocator, kernels
    rates = []
    for r in range(args.repeats):
        rates.append(images_per_second(model, optimizer, images, labels, args.steps))
        if not args.json:
            print("repeat %d: PyTorch %.1f img/s" % (r + 1, rates[-1]), flush=True)
    result = {"torch": torch.__version__, "device": args.device, "depth": args.depth, "growth": args.growth,
              "batch": args.batch, "threads": args.threads, "steps": args.steps, "images_per_s": rates,
              "median_images_per_s": statistics.median(rates)}
    if args.json:
        print(json.dumps(result))
    else:
        print("median: PyTorch %s %.1f img/s (DenseNet-%d k=%d, batch %d, %d thread(s), %s)"
              % (torch.__version__, result["median_images_per_s"], args.depth, args.growth, args.batch,
                 args.threads, args.device))


if __name__ == "__main__":
    main()

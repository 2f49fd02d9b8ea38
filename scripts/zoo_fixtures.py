#!/usr/bin/python3
"""Forward fixtures for the zoo cfgs against the reference definitions.

For each cfg/NAME_cifar.cfg this builds the corresponding model of a
kuangliu/pytorch-cifar checkout (the paper's reference definitions), fills
every tensor that cdbnet's weights file holds, in the file's order, with
values from a counter-based hash (the same formula the C test computes, so
that the fixture stores two numbers per tensor instead of the weights),
runs the model in eval mode in float64 on a batch of 2 hashed images, and
writes tests/fixtures/zoo_NAME.bin: the per-tensor offsets and scales and
the reference's logits. The tensors are walked in the cfg's layer order,
taking the reference's modules in the order it registers them, which the
zoo cfgs follow (scripts/zoo_cfgs.py). Needs Debian's python3-torch and
numpy; the tests need neither.

usage (from the repository root):
  /usr/bin/python3 scripts/zoo_fixtures.py KUANGLIU_CHECKOUT [NAME ...]
"""
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn

from bench_torch import parse_cfg

MASK = 0xFFFFFFFF
INPUT_TENSOR = 100000  # the tensor id of the input batch


def lowbias32(x):
    """The 32-bit hash on a numpy uint64 array holding 32-bit values."""
    m = np.uint64(MASK)
    x = x & m
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x7FEB352D)) & m
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x846CA68B)) & m
    x ^= x >> np.uint64(16)
    return x


def hashed(tensor_id, n, offset, scale):
    """float32 offset + scale * v, v = the hash of (tensor, element) mapped to
    [-1, 1) exactly; each operation rounded to float32, as in C."""
    base = np.uint64((tensor_id * 0x9E3779B1) & MASK)
    j = np.arange(n, dtype=np.uint64)
    h = lowbias32(base + j * np.uint64(0x85EBCA77))
    v = ((h >> np.uint64(8)).astype(np.int64) - (1 << 23)).astype(np.float32) / np.float32(1 << 23)
    return (np.float32(offset) + np.float32(scale) * v).astype(np.float32)


def reference_model(name, root):
    sys.path.insert(0, root)
    from models.densenet import DenseNet121
    from models.efficientnet import EfficientNetB0
    from models.mobilenetv2 import MobileNetV2
    from models.preact_resnet import PreActResNet18
    from models.resnet import ResNet50
    from models.shufflenetv2 import ShuffleNetV2
    build = {"mobilenetv2": MobileNetV2, "efficientnet_b0": EfficientNetB0, "shufflenetv2": lambda: ShuffleNetV2(1),
             "densenet121": DenseNet121, "resnet50": ResNet50, "preact_resnet18": PreActResNet18}[name]
    model = build()
    unused = set()
    if name == "efficientnet_b0":
        # Built but never used by the forward pass (expansion 1).
        unused = {id(model.layers[0].conv1), id(model.layers[0].bn1)}
    mods = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear)) and id(m) not in unused]
    return model, mods


def tensors_in_file_order(sections, mods):
    """(torch tensor, role, fan_in) in cdbnet's weights-file order."""
    out, i = [], 0

    def take(kind):
        nonlocal i
        m = mods[i]
        if not isinstance(m, kind):
            raise SystemExit(f"module {i} is {type(m).__name__}, the cfg expects {kind.__name__}")
        i += 1
        return m

    def bn_arrays(bn):
        return [(bn.bias, "beta", 0), (bn.weight, "gamma", 0), (bn.running_mean, "mean", 0), (bn.running_var, "var", 0)]

    for kind, o in sections[1:]:
        if kind in ("convolutional", "conv"):
            conv = take(nn.Conv2d)
            fan_in = conv.weight[0].numel()
            if int(o.get("batch_normalize", 0)):
                out += bn_arrays(take(nn.BatchNorm2d))
            elif int(o.get("bias", 1)):
                out.append((conv.bias, "bias", fan_in))
            out.append((conv.weight, "weight", fan_in))
        elif kind == "batchnorm":
            out += bn_arrays(take(nn.BatchNorm2d))
        elif kind in ("connected", "conn"):
            lin = take(nn.Linear)
            out += [(lin.bias, "bias", lin.in_features), (lin.weight, "weight", lin.in_features)]
    if i != len(mods):
        raise SystemExit(f"{len(mods) - i} reference modules left over")
    return out


def offset_scale(role, fan_in):
    if role == "weight":
        return 0.0, math.sqrt(6.0 / fan_in)  # He-uniform: keeps ReLU activations of order 1
    if role == "bias":
        return 0.0, 1.0 / math.sqrt(fan_in)
    return {"beta": (0.0, 0.1), "gamma": (1.0, 0.2), "mean": (0.0, 0.1), "var": (1.0, 0.3)}[role]


def write_fixture(path, arrays):
    with open(path, "wb") as f:
        f.write(b"CDBF" + struct.pack("<i", len(arrays)))
        for name, values in arrays:
            data = np.asarray(values, dtype=np.float32)
            f.write(struct.pack("<i", len(name)) + name.encode() + struct.pack("<q", data.size))
            f.write(data.tobytes())


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    root = sys.argv[1]
    names = sys.argv[2:] or ["mobilenetv2", "efficientnet_b0", "shufflenetv2", "densenet121", "resnet50",
                             "preact_resnet18"]
    torch.set_grad_enabled(False)
    for name in names:
        sections = parse_cfg(f"cfg/{name}_cifar.cfg")
        model, mods = reference_model(name, root)
        tensors = tensors_in_file_order(sections, mods)
        offsets, scales = [], []
        for k, (t, role, fan_in) in enumerate(tensors):
            off, sc = offset_scale(role, fan_in)
            offsets.append(off)
            scales.append(sc)
            t.copy_(torch.from_numpy(hashed(k, t.numel(), off, sc)).reshape(t.shape))
        model = model.double().eval()
        x = torch.from_numpy(hashed(INPUT_TENSOR, 2 * 3 * 32 * 32, 0.0, 1.0).astype(np.float64)).reshape(2, 3, 32, 32)
        logits = model(x).numpy().ravel()
        path = os.path.join("tests", "fixtures", f"zoo_{name}.bin")
        write_fixture(path, [("offsets", offsets), ("scales", scales), ("logits", logits)])
        print(f"{path}: {len(tensors)} tensors, logits {np.round(logits[:4], 4)} ...")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes the model-zoo cfgs (cfg/*_cifar.cfg) from the CIFAR definitions
of the paper's reference models (kuangliu/pytorch-cifar: MobileNetV2,
EfficientNet-B0, ShuffleNetV2 1x, DenseNet-121, ResNet-50,
PreAct-ResNet-18), layer for layer in the order the reference registers
its modules, so that a weights file maps onto the reference's tensors in
order. Rerun after changing the recipe; the cfgs are committed.

usage: scripts/zoo_cfgs.py [OUTDIR]   (default cfg/)
"""
import os
import sys

RECIPE = """\
[net]
data=cfg/cifar10.data
batch=128
subdivisions=1
width=32
height=32
channels=3
classes=10
mean=0.4914,0.4822,0.4465
std=0.2470,0.2435,0.2616
crop_pad=4
flip=1
angle=15
optimizer=sgd
learning_rate=0.01
momentum=0.9
nesterov=1
decay=0.0005
policy=steps
steps=0.3,0.6,0.85
scales=0.1,0.1,0.1
max_epochs=200
seed=1
channel_dropback=1
dropback_layer_rate=0.3
dropback_layer_rate_init=0.03
dropback_milestones=0.3,0.6
dropback_channel_rate=0.3
dropback_skip=3
"""

RECIPE_NOTE = """\
# The reference recipe: SGD with Nesterov momentum 0.9, weight decay 5e-4,
# batch 128, lr 0.01 divided by 10 at 30%, 60% and 85% of 200 epochs, random
# crop with 4-pixel padding, horizontal flip and rotation up to 15 degrees;
# ChannelDropBack at the reference rates (channel_dropback=0 for the
# baseline, or `cdbnet compare`). CIFAR-100: -set net.classes=100
# -data cfg/cifar100.data (the last [connected] has output=classes).
"""


class Cfg:
    def __init__(self):
        self.parts = []
        self.n = 0  # index of the next layer

    def comment(self, text):
        self.parts.append("\n# " + text)

    def layer(self, kind, **keys):
        lines = ["", f"[{kind}]"] + [f"{k}={v}" for k, v in keys.items()]
        self.parts.append("\n".join(lines))
        self.n += 1
        return self.n - 1

    def conv(self, filters, size=1, stride=1, groups=1, bn=1, act="linear", bias=1):
        keys = {"filters": filters, "size": size, "stride": stride}
        if size > 1:
            keys["pad"] = 1
        if groups > 1:
            keys["groups"] = groups
        if bn:
            keys["batch_normalize"] = 1
        elif not bias:
            keys["bias"] = 0
        keys["activation"] = act
        return self.layer("convolutional", **keys)

    def text(self, header):
        return header + RECIPE_NOTE + RECIPE + "\n".join(self.parts) + "\n"

    def classifier(self):
        self.layer("connected", output="classes", activation="linear")
        self.layer("softmax")


def mobilenetv2():
    c = Cfg()
    c.comment("layer 0: stem, 3x3 stride 1 (the reference's CIFAR change)")
    last = c.conv(32, 3, act="relu")
    cin = 32
    stages = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    for expansion, cout, blocks, first_stride in stages:
        for i in range(blocks):
            stride = first_stride if i == 0 else 1
            planes = expansion * cin
            c.comment(f"block {cin}->{cout}, expansion {expansion}, stride {stride} (layers {c.n}..)")
            block_in = last
            c.conv(planes, 1, act="relu")
            c.conv(planes, 3, stride, groups=planes, act="relu")
            branch = c.conv(cout, 1)
            last = branch
            if stride == 1:
                if cin != cout:
                    c.layer("route", layers=block_in)
                    c.conv(cout, 1)
                    last = c.layer("shortcut", **{"from": branch})
                else:
                    last = c.layer("shortcut", **{"from": block_in})
            cin = cout
    c.comment(f"head (layers {c.n}..): 1x1 to 1280, global average pool, classifier")
    c.conv(1280, 1, act="relu")
    c.layer("avgpool")
    c.classifier()
    return c.text("# MobileNetV2 for 32x32 CIFAR (Sandler et al. 2018), as the reference's\n"
                  "# CIFAR definition: stem and second stage at stride 1; every stride-1\n"
                  "# block adds its input, through a 1x1 projection with batch norm where\n"
                  "# the channels change ([route] back to the block input, the projection,\n"
                  "# then [shortcut]).\n")


def efficientnet_b0():
    c = Cfg()
    c.comment("layer 0: stem")
    last = c.conv(32, 3, act="swish")
    cin = 32
    stages = [(1, 16, 1, 3, 1), (6, 24, 2, 3, 2), (6, 40, 2, 5, 2), (6, 80, 3, 3, 2), (6, 112, 3, 5, 1),
              (6, 192, 4, 5, 2), (6, 320, 1, 3, 1)]
    for expansion, cout, blocks, k, first_stride in stages:
        for i in range(blocks):
            stride = first_stride if i == 0 else 1
            channels = expansion * cin
            se = int(cin * 0.25)
            c.comment(f"block {cin}->{cout}, expansion {expansion}, {k}x{k}, stride {stride}, "
                      f"squeeze-excitation to {se} (layers {c.n}..)")
            block_in = last
            if expansion != 1:
                c.conv(channels, 1, act="swish")
            dw = c.conv(channels, k, stride, groups=channels, act="swish")
            c.layer("avgpool")
            c.conv(se, 1, bn=0, act="swish")
            c.conv(channels, 1, bn=0, act="logistic")
            c.layer("scale_channels", **{"from": dw})
            last = c.conv(cout, 1)
            if stride == 1 and cin == cout:
                last = c.layer("shortcut", **{"from": block_in})
            cin = cout
    c.comment(f"head (layers {c.n}..): global average pool, dropout 0.2, classifier")
    c.layer("avgpool")
    c.layer("dropout", probability=0.2)
    c.classifier()
    return c.text("# EfficientNet-B0 for 32x32 CIFAR (Tan and Le 2019), as the reference's\n"
                  "# CIFAR definition: stem at stride 1; MBConv blocks with swish,\n"
                  "# squeeze-and-excitation ([avgpool], two 1x1 convolutions with biases,\n"
                  "# [scale_channels]) and an identity shortcut where the shape allows;\n"
                  "# dropout 0.2 before the classifier. The reference defines drop-connect\n"
                  "# with rate 0.2*b/16 for block b but never advances b, so every block's\n"
                  "# rate is 0: these cfgs train as the reference does. For the intended\n"
                  "# schedule add drop_connect=0.2*b/16 to block b's [shortcut].\n"
                  "# The reference also builds (and counts) an expansion convolution and\n"
                  "# batch norm in the first block that its forward pass never uses\n"
                  "# (32*32 + 2*32 parameters); they are left out here.\n")


def shufflenetv2():
    c = Cfg()
    c.comment("layer 0: stem")
    last = c.conv(24, 3, act="relu")
    cin = 24
    for cout, blocks in [(116, 3), (232, 7), (464, 3)]:
        mid = cout // 2
        c.comment(f"down block {cin}->{cout} (layers {c.n}..): left, then right, concatenated and shuffled")
        block_in = last
        c.conv(cin, 3, 2, groups=cin)
        left = c.conv(mid, 1, act="relu")
        c.layer("route", layers=block_in)
        c.conv(mid, 1, act="relu")
        c.conv(mid, 3, 2, groups=mid)
        right = c.conv(mid, 1, act="relu")
        c.layer("route", layers=f"{left},{right}")
        last = c.layer("shuffle", groups=2)
        half = cout // 2
        for _ in range(blocks):
            c.comment(f"basic block {cout} (layers {c.n}..): the second half through the branch, "
                      "the first half as it is")
            block_in = last
            c.layer("route", layers=block_in, groups=2, group_id=1)
            c.conv(half, 1, act="relu")
            c.conv(half, 3, groups=half)
            branch = c.conv(half, 1, act="relu")
            first = c.layer("route", layers=block_in, groups=2, group_id=0)
            c.layer("route", layers=f"{first},{branch}")
            last = c.layer("shuffle", groups=2)
        cin = cout
    c.comment(f"head (layers {c.n}..): 1x1 to 1024, global average pool, classifier")
    c.conv(1024, 1, act="relu")
    c.layer("avgpool")
    c.classifier()
    return c.text("# ShuffleNetV2 1x for 32x32 CIFAR (Ma et al. 2018), as the reference's\n"
                  "# CIFAR definition: stem at stride 1, no max-pool; channel split with\n"
                  "# [route] groups=2 group_id=, concatenation with [route], channel shuffle\n"
                  "# with [shuffle] groups=2.\n")


def densenet121():
    c = Cfg()
    growth = 32
    c.comment("layer 0: stem (no batch norm and no bias: the first dense layer's batch norm follows)")
    last = c.conv(2 * growth, 3, bn=0, bias=0)
    planes = 2 * growth
    for stage, layers in enumerate([6, 12, 24, 16]):
        for _ in range(layers):
            c.comment(f"dense layer on {planes} channels (layers {c.n}..): new features first, then the input")
            block_in = last
            c.layer("batchnorm", activation="relu")
            c.conv(4 * growth, 1, bn=0, bias=0)
            c.layer("batchnorm", activation="relu")
            c.conv(growth, 3, bn=0, bias=0)
            last = c.layer("route", layers=f"{c.n - 1},{block_in}")
            planes += growth
        if stage < 3:
            out = planes // 2
            c.comment(f"transition {planes}->{out} (layers {c.n}..)")
            c.layer("batchnorm", activation="relu")
            c.conv(out, 1, bn=0, bias=0)
            last = c.layer("local_avgpool", size=2, stride=2)
            planes = out
    c.comment(f"head (layers {c.n}..)")
    c.layer("batchnorm", activation="relu")
    c.layer("avgpool")
    c.classifier()
    return c.text("# DenseNet-121 for 32x32 CIFAR (Huang et al. 2017; growth 32, blocks\n"
                  "# 6-12-24-16, compression 0.5), as the reference's CIFAR definition:\n"
                  "# 3x3 stem, pre-activation bottlenecks ([batchnorm] activation=relu then\n"
                  "# a convolution without bias), transitions with [local_avgpool].\n")


def resnet50():
    c = Cfg()
    c.comment("layer 0: stem")
    last = c.conv(64, 3, act="relu")
    cin = 64
    for planes, blocks, first_stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
        for i in range(blocks):
            stride = first_stride if i == 0 else 1
            cout = 4 * planes
            c.comment(f"bottleneck {cin}->{cout}, stride {stride} (layers {c.n}..)")
            block_in = last
            c.conv(planes, 1, act="relu")
            c.conv(planes, 3, stride, act="relu")
            branch = c.conv(cout, 1)
            if stride != 1 or cin != cout:
                c.layer("route", layers=block_in)
                c.conv(cout, 1, stride)
                last = c.layer("shortcut", **{"from": branch}, activation="relu")
            else:
                last = c.layer("shortcut", **{"from": block_in}, activation="relu")
            cin = cout
    c.comment(f"head (layers {c.n}..)")
    c.layer("avgpool")
    c.classifier()
    return c.text("# ResNet-50 for 32x32 CIFAR (He et al. 2016), as the reference's CIFAR\n"
                  "# definition: 3x3 stem at stride 1, no max-pool, bottleneck blocks\n"
                  "# 3-4-6-3; projection shortcuts (1x1, batch norm) where the shape\n"
                  "# changes.\n")


def preact_resnet18():
    c = Cfg()
    c.comment("layer 0: stem (no batch norm and no bias: each block starts with one)")
    last = c.conv(64, 3, bn=0, bias=0)
    cin = 64
    for planes, first_stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
        for i in range(2):
            stride = first_stride if i == 0 else 1
            c.comment(f"pre-activation block {cin}->{planes}, stride {stride} (layers {c.n}..)")
            block_in = last
            pre = c.layer("batchnorm", activation="relu")
            c.conv(planes, 3, stride, bn=0, bias=0)
            c.layer("batchnorm", activation="relu")
            branch = c.conv(planes, 3, bn=0, bias=0)
            if stride != 1 or cin != planes:
                c.layer("route", layers=pre)
                c.conv(planes, 1, stride, bn=0, bias=0)
                last = c.layer("shortcut", **{"from": branch})
            else:
                last = c.layer("shortcut", **{"from": block_in})
            cin = planes
    c.comment(f"head (layers {c.n}..)")
    c.layer("avgpool")
    c.classifier()
    return c.text("# PreAct-ResNet-18 for 32x32 CIFAR (He et al. 2016, identity mappings),\n"
                  "# as the reference's CIFAR definition: batch norm and ReLU before each\n"
                  "# convolution ([batchnorm] activation=relu, convolutions without bias);\n"
                  "# a projection (1x1, no batch norm) of the pre-activated input where the\n"
                  "# shape changes.\n")


MODELS = {
    "mobilenetv2_cifar": mobilenetv2,
    "efficientnet_b0_cifar": efficientnet_b0,
    "shufflenetv2_cifar": shufflenetv2,
    "densenet121_cifar": densenet121,
    "resnet50_cifar": resnet50,
    "preact_resnet18_cifar": preact_resnet18,
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "cfg")
    for name, build in MODELS.items():
        path = os.path.join(out, name + ".cfg")
        with open(path, "w") as f:
            f.write(build())
        print(path)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""PyTorch peer of `cdbnet benchmark`: builds the network of a cdbnet cfg in
PyTorch (the layer types of the shipped cfgs), trains it on synthetic data
of the same shape with the cfg's optimizer, and prints images/s in the same
form. Needs Debian's python3-torch.

usage: /usr/bin/python3 scripts/bench_torch.py CFG [-batch N] [-steps N]
       [-repeats N] [-warmup N] [-threads N]
"""
import argparse
import os
import statistics
import sys
import time


def _threads_from_argv(argv):
    for i, arg in enumerate(argv[:-1]):
        if arg == "-threads":
            return argv[i + 1]
    return "1"


# -threads must bind every thread pool under torch. Debian's torch reaches
# OpenBLAS through libblas.so.3, by default OpenBLAS's pthread build, which
# ignores torch.set_num_threads() and would run its GEMMs on every core. These
# variables only take effect when set before torch is loaded.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = _threads_from_argv(sys.argv[1:])

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from torch_layers import Attention, Tokens  # noqa: E402


def parse_cfg(path):
    sections = []
    for raw in open(path):
        line = raw.split("#")[0].split(";")[0].strip()
        if not line:
            continue
        if line.startswith("["):
            sections.append((line[1:-1].strip().lower(), {}))
        else:
            key, value = line.split("=", 1)
            sections[-1][1][key.strip()] = value.strip()
    return sections


ACTIVATIONS = {
    "linear": nn.Identity, "relu": nn.ReLU, "leaky": lambda: nn.LeakyReLU(0.1), "relu6": nn.ReLU6,
    "logistic": nn.Sigmoid, "tanh": nn.Tanh, "gelu": nn.GELU, "swish": nn.SiLU, "silu": nn.SiLU,
    "mish": nn.Mish, "hardswish": nn.Hardswish,
}


class ClsToken(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.token = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, x):
        return torch.cat([self.token.expand(x.shape[0], -1, -1), x], dim=1)


class PosEmbed(nn.Module):
    def __init__(self, tokens, dim):
        super().__init__()
        self.embedding = nn.Parameter(torch.zeros(1, tokens, dim))

    def forward(self, x):
        return x + self.embedding


class Net(nn.Module):
    """Darknet-style: layers run in order; shortcut/route read earlier outputs."""

    def __init__(self, sections):
        super().__init__()
        net = sections[0][1]
        c, h, w = int(net["channels"]), int(net["height"]), int(net["width"])
        tokens = 0
        self.mods = nn.ModuleList()
        self.kinds = []
        shapes = []
        for i, (kind, o) in enumerate(sections[1:]):
            act = ACTIVATIONS[o.get("activation", "linear" if kind in ("shortcut",) else "logistic")]()
            mod, extra = nn.Identity(), None
            if kind in ("convolutional", "conv"):
                f, k, s = int(o.get("filters", 1)), int(o.get("size", 1)), int(o.get("stride", 1))
                p = k // 2 if int(o.get("pad", 0)) else int(o.get("padding", 0))  # Darknet: pad overrides padding
                g, bn = int(o.get("groups", 1)), int(o.get("batch_normalize", 0))
                layers = [nn.Conv2d(c, f, k, s, p, groups=g, bias=not bn and bool(int(o.get("bias", 1))))]
                if bn:
                    layers.append(nn.BatchNorm2d(f))
                mod = nn.Sequential(*layers, act)
                c, h, w = f, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            elif kind in ("connected", "conn"):
                out = int(net["classes"]) if o["output"] == "classes" else int(o["output"])
                bn = int(o.get("batch_normalize", 0))
                if tokens:
                    mod = nn.Sequential(nn.Linear(c, out), act)
                    c = out
                else:
                    layers = [nn.Flatten(), nn.Linear(c * h * w, out)]
                    if bn:
                        layers.append(nn.BatchNorm1d(out))
                    mod = nn.Sequential(*layers, act)
                    c, h, w = out, 1, 1
            elif kind in ("maxpool", "max"):
                s = int(o.get("stride", 1))  # Darknet's defaults
                k = int(o.get("size", s))
                mod = nn.MaxPool2d(k, s, ceil_mode=True)
                pad = int(o.get("padding", k - 1))
                h, w = (h + pad - k) // s + 1, (w + pad - k) // s + 1
            elif kind in ("avgpool", "avg"):
                mod = nn.AdaptiveAvgPool2d(1)  # C x 1 x 1, as cdbnet's (a [connected] flattens)
                h = w = 1
            elif kind == "local_avgpool":
                s = int(o.get("stride", 1))
                k = int(o.get("size", s))
                mod = nn.AvgPool2d(k, s, ceil_mode=True)
                pad = int(o.get("padding", k - 1))
                h, w = (h + pad - k) // s + 1, (w + pad - k) // s + 1
            elif kind == "batchnorm":
                mod = nn.Sequential(nn.BatchNorm2d(c), ACTIVATIONS[o.get("activation", "linear")]())
            elif kind == "scale_channels":
                ref = int(o["from"])
                extra = ("scale", ref if ref >= 0 else i + ref)
                c, h, w = shapes[extra[1]]
            elif kind == "shuffle":
                mod = Shuffle(int(o.get("groups", 2)))
            elif kind == "shortcut":
                ref = int(o["from"])
                extra = ("shortcut", ref if ref >= 0 else i + ref, float(o.get("drop_connect", 0)))
                mod = act
            elif kind == "route":
                refs = [int(v) for v in o["layers"].split(",")]
                groups, group_id = int(o.get("groups", 1)), int(o.get("group_id", 0))
                extra = ("route", [r if r >= 0 else i + r for r in refs], groups, group_id)
                c = sum(shapes[r][0] for r in extra[1]) // groups
                h, w = shapes[extra[1][0]][1], shapes[extra[1][0]][2]
            elif kind == "dropout":
                mod = nn.Dropout(float(o.get("probability", 0.5)))
            elif kind in ("softmax", "soft"):
                mod = nn.Identity()  # the loss applies log-softmax
            elif kind == "tokens":
                mod = Tokens()
                tokens, h, w = h * w, h * w, 1
            elif kind == "cls_token":
                mod = ClsToken(c)
                tokens += 1
                h = tokens
            elif kind == "pos_embed":
                mod = PosEmbed(tokens, c)
            elif kind == "layernorm":
                mod = nn.LayerNorm(c, eps=float(o.get("eps", 1e-5)))
            elif kind == "attention":
                mod = Attention(c, int(o.get("heads", 1)))
            elif kind == "token_pool":
                mod = MeanTokens() if o.get("mode", "cls") == "mean" else FirstToken()
                tokens, h, w = 0, 1, 1
            else:
                raise SystemExit(f"bench_torch.py: layer type [{kind}] is not supported")
            self.mods.append(mod)
            self.kinds.append(extra)
            shapes.append((c, h, w))

    def forward(self, x):
        outs = []
        for mod, extra in zip(self.mods, self.kinds):
            if extra and extra[0] == "shortcut":
                if extra[2] > 0 and self.training:
                    keep = torch.rand(x.shape[0], 1, 1, 1, device=x.device) >= extra[2]
                    x = x * keep / (1 - extra[2])
                x = mod(x + outs[extra[1]])
            elif extra and extra[0] == "route":
                _, refs, groups, group_id = extra
                parts = [outs[r].chunk(groups, dim=1)[group_id] if groups > 1 else outs[r] for r in refs]
                x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
            elif extra and extra[0] == "scale":
                x = outs[extra[1]] * x.reshape(x.shape[0], -1, 1, 1)
            else:
                x = mod(x)
            outs.append(x)
        return x


class Shuffle(nn.Module):
    def __init__(self, groups):
        super().__init__()
        self.groups = groups

    def forward(self, x):
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class MeanTokens(nn.Module):
    def forward(self, x):
        return x.mean(dim=1)


class FirstToken(nn.Module):
    def forward(self, x):
        return x[:, 0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cfg")
    ap.add_argument("-batch", type=int, default=0)
    ap.add_argument("-steps", type=int, default=10)
    ap.add_argument("-repeats", type=int, default=5)
    ap.add_argument("-warmup", type=int, default=3)
    ap.add_argument("-threads", type=int, default=1)
    ap.add_argument("-device", default="cpu", help="cpu or cuda")
    a = ap.parse_args()
    device = torch.device(a.device)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    sections = parse_cfg(a.cfg)
    net_opts = sections[0][1]
    batch = a.batch or int(net_opts.get("batch", 1))
    model = Net(sections).to(device)
    with torch.no_grad():
        x = torch.randn(batch, int(net_opts["channels"]), int(net_opts["height"]), int(net_opts["width"])).to(device)
        classes = model(x[:2]).shape[1]
    labels = torch.randint(0, classes, (batch,)).to(device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # float32, as cdbnet
        torch.backends.cudnn.allow_tf32 = False
    lr = float(net_opts.get("learning_rate", 0.001))
    decay = float(net_opts.get("decay", 0.0001))
    if net_opts.get("optimizer", "sgd") == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=decay,
                                betas=(float(net_opts.get("beta1", 0.9)), float(net_opts.get("beta2", 0.999))))
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=float(net_opts.get("momentum", 0.9)),
                              weight_decay=decay, nesterov=bool(int(net_opts.get("nesterov", 0))))
    smoothing = float(net_opts.get("label_smoothing", 0))
    model.train()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), labels, label_smoothing=smoothing)
        loss.backward()
        opt.step()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(a.warmup):
        step()
    rates = []
    wall = cpu = 0.0
    for _ in range(a.repeats):
        sync()
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(a.steps):
            step()
        sync()
        dt = time.perf_counter() - t0
        wall, cpu = wall + dt, cpu + time.process_time() - c0
        rates.append(a.steps * batch / dt)
    med = statistics.median(rates)
    where = "cuda" if device.type == "cuda" else f"{a.threads} threads"
    print(f"torch {torch.__version__} {a.cfg}: batch {batch}, {where}")
    print(f"images/s: median {med:.1f} over {a.repeats} repeats of {a.steps} steps "
          f"(min {min(rates):.1f}, max {max(rates):.1f}, spread {100 * (max(rates) - min(rates)) / med:.1f}%)")
    print(f"cpu: {cpu / wall:.2f} cores busy on average while timed")


if __name__ == "__main__":
    main()

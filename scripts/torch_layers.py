"""PyTorch versions of cdbnet's [tokens] and [attention], shared by
scripts/make_fixtures.py and scripts/bench_torch.py."""
import math

import torch.nn as nn


class Tokens(nn.Module):
    """(B, C, H, W) -> (B, H*W, C), cdbnet's [tokens]."""

    def forward(self, x):
        return x.flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """timm-style multi-head self-attention with a fused qkv projection, the
    layout of cdbnet's [attention] weights."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, T, D = x.shape
        qkv = self.qkv(x).reshape(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = (q @ k.transpose(-2, -1)) / math.sqrt(D // self.heads)
        return self.proj((att.softmax(dim=-1) @ v).transpose(1, 2).reshape(B, T, D))

"""The VoxelMorph U-Net (Balakrishnan et al., TMI 2019), 2D and 3D.

Own code rather than MONAI's VoxelMorphUNet: the paper's encoder downsamples with stride-2
convolutions and its decoder widths (vm1 / vm2) map one-to-one onto the arguments here; any input
size works (upsampling goes to the skip's size, so no divisibility by 16 is needed).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

# widths from the paper: encoder, decoder up path, extra convs at 1/2 resolution, full resolution
VM_WIDTHS = {
    "vm1": dict(enc=(16, 32, 32, 32), dec=(32, 32, 32, 32), half=(), full=(8, 8)),
    "vm2": dict(enc=(16, 32, 32, 32), dec=(32, 32, 32, 32), half=(32,), full=(16, 16)),
}


def conv_nd(ndim: int):
    return nn.Conv2d if ndim == 2 else nn.Conv3d


class ConvAct(nn.Module):
    """Conv (k=3) + LeakyReLU(0.2), VoxelMorph's unit."""

    def __init__(self, ndim: int, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv = conv_nd(ndim)(cin, cout, 3, stride=stride, padding=1)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x):
        return self.act(self.conv(x))


def flow_head(ndim: int, cin: int, std: float = 1e-5) -> nn.Module:
    """Final conv to D displacement channels, initialised near zero (the identity map)."""
    head = conv_nd(ndim)(cin, ndim, 3, padding=1)
    nn.init.normal_(head.weight, 0.0, std)
    nn.init.zeros_(head.bias)
    return head


def up_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[2:], mode="nearest")


class VoxelMorphUNet(nn.Module):
    """U-Net features (B, in_ch, *S) -> (B, full[-1], *S); the flow head is separate."""

    def __init__(self, ndim: int, in_channels: int = 2, enc: Sequence[int] = (16, 32, 32, 32),
                 dec: Sequence[int] = (32, 32, 32, 32), half: Sequence[int] = (), full: Sequence[int] = (16, 16)):
        super().__init__()
        if ndim not in (2, 3):
            raise ValueError(f"ndim must be 2 or 3, got {ndim}")
        if len(dec) != len(enc):
            raise ValueError("decoder needs one width per encoder level")
        self.down = nn.ModuleList()
        c = in_channels
        skips = [in_channels]
        for w in enc:
            self.down.append(ConvAct(ndim, c, w, stride=2))
            c = w
            skips.append(w)
        # decoder: conv at the deepest level, then (upsample, concatenate skip, conv) up to 1/2
        self.up = nn.ModuleList()
        for i, w in enumerate(dec):
            cin = c if i == 0 else c + skips[-1 - i]
            self.up.append(ConvAct(ndim, cin, w))
            c = w
        self.half_convs = nn.ModuleList()
        for w in half:
            self.half_convs.append(ConvAct(ndim, c, w))
            c = w
        c = c + skips[0]  # upsampled to full resolution and concatenated with the input
        self.full_convs = nn.ModuleList()
        for w in full:
            self.full_convs.append(ConvAct(ndim, c, w))
            c = w
        self.out_channels = c

    def forward(self, x):
        feats = [x]
        h = x
        for layer in self.down:
            h = layer(h)
            feats.append(h)
        # feats: [x, 1/2, 1/4, ..., 1/2^L]; decoder climbs from the deepest level
        n = len(self.down)
        for i, layer in enumerate(self.up):
            if i > 0:
                skip = feats[n - i]
                h = torch.cat([up_to(h, skip), skip], 1)
            h = layer(h)
        for layer in self.half_convs:
            h = layer(h)
        h = torch.cat([up_to(h, x), x], 1)
        for layer in self.full_convs:
            h = layer(h)
        return h

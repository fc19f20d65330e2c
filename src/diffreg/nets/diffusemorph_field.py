"""DiffuseMorph's deformation network: the VoxelMorph-1-style U-Net of its official code
(boahK/DiffuseMorph `deformation_net_{2D,3D}.py`, `registUnetBlock`), with the official parameter
names so an official state dict loads with strict=True.

Input concat(moving, score) (the moving image in [-1, 1] and the diffusion network's output);
a stride-1 convolution, four stride-2 convolutions, four transposed-convolution upsamplings with
skip concatenations (one extra convolution before the last), a last convolution to the field.
Every convolution block is conv + LeakyReLU(0.2); in 2D a block has two such convolutions, in 3D
one (as the official code). The field is in voxels, channel c along array axis c, and warps
(moving + 1) / 2 with linear interpolation, outside the image as the official spatial
transformers do: the nearest border value in 2D (it pads with a replicated border and clamps),
zeros in 3D (it pads with one zero voxel and clamps).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .. import spatial

# the official configurations (config/diffuseMorph_train_{2D,3D}.json, "field")
OFFICIAL = {
    2: dict(in_channel=2, encoder_nc=(64, 128, 256, 512, 1024), decoder_nc=(1024, 512, 256, 128, 64, 2)),
    3: dict(in_channel=2, encoder_nc=(16, 32, 32, 32, 32), decoder_nc=(32, 32, 32, 8, 8, 3)),
}


def _conv(ndim: int):
    return nn.Conv2d if ndim == 2 else nn.Conv3d


def _convs(ndim: int, cin: int, cout: int, stride: int = 1, double: bool = False) -> nn.Sequential:
    """conv 3 + LeakyReLU(0.2), twice with `double` (DiffuseMorph's 2D blocks)."""
    layers = [_conv(ndim)(cin, cout, 3, stride=stride, padding=1), nn.LeakyReLU(0.2)]
    if double:
        layers += [_conv(ndim)(cout, cout, 3, padding=1), nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers)


class CRBlock(nn.Module):
    def __init__(self, ndim: int, cin: int, cout: int, stride: int = 1, double: bool = False):
        super().__init__()
        self.block = _convs(ndim, cin, cout, stride, double)

    def forward(self, x):
        return self.block(x)


class Wrapped(nn.Module):
    """The official in/down blocks hold their CRBlock as `block` (keys `<name>.block.block.i`)."""

    def __init__(self, ndim: int, cin: int, cout: int, stride: int, double: bool = False):
        super().__init__()
        self.block = CRBlock(ndim, cin, cout, stride, double)

    def forward(self, x):
        return self.block(x)


class UpBlock(nn.Module):
    def __init__(self, ndim: int, cin: int, cat_ch: int, cout: int, double: bool = False):
        super().__init__()
        tconv = nn.ConvTranspose2d if ndim == 2 else nn.ConvTranspose3d
        self.upconv = tconv(cin, cin, 3, padding=1, stride=2, output_padding=1)
        self.block = CRBlock(ndim, cat_ch, cout, double=double)

    def forward(self, x, skip):
        return self.block(torch.cat([skip, self.upconv(x)], 1))


class OutConv(nn.Module):
    """The last convolution, under the official attribute name (`block` here, `upconv` in CycleMorph)."""

    def __init__(self, ndim: int, cin: int, cout: int, name: str = "block"):
        super().__init__()
        self.name = name
        setattr(self, name, _conv(ndim)(cin, cout, 3, padding=1))

    def forward(self, x):
        return getattr(self, self.name)(x)


class VM1UNet(nn.Module):
    """The VoxelMorph-1-style registUnetBlock of the boahK codes (DiffuseMorph, CycleMorph):
    widths e (5) and d (6, the last = the field's channels); `double`: two convolutions per block;
    `out_name`: the last convolution's attribute."""

    multiple = 16

    def __init__(self, ndim: int, in_channel: int, e: Sequence[int], d: Sequence[int], double: bool = False,
                 out_name: str = "block"):
        super().__init__()
        self.inconv = Wrapped(ndim, in_channel, e[0], 1, double)
        self.downconv1 = Wrapped(ndim, e[0], e[1], 2, double)
        self.downconv2 = Wrapped(ndim, e[1], e[2], 2, double)
        self.downconv3 = Wrapped(ndim, e[2], e[3], 2, double)
        self.downconv4 = Wrapped(ndim, e[3], e[4], 2, double)
        self.upconv1 = UpBlock(ndim, e[4], e[4] + e[3], d[0], double)
        self.upconv2 = UpBlock(ndim, d[0], d[0] + e[2], d[1], double)
        self.upconv3 = UpBlock(ndim, d[1], d[1] + e[1], d[2], double)
        self.keepblock = CRBlock(ndim, d[2], d[3], double=double)
        self.upconv4 = UpBlock(ndim, d[3], d[3] + e[0], d[4], double)
        self.outconv = OutConv(ndim, d[4], d[5], out_name)

    def field(self, x: torch.Tensor) -> torch.Tensor:
        if any(n % self.multiple for n in x.shape[2:]):
            raise ValueError(f"deformation network input {tuple(x.shape[2:])}: every side must be a multiple of 16")
        x1 = self.inconv(x)
        x2 = self.downconv1(x1)
        x3 = self.downconv2(x2)
        x4 = self.downconv3(x3)
        x5 = self.downconv4(x4)
        h = self.upconv3(self.upconv2(self.upconv1(x5, x4), x3), x2)
        return self.outconv(self.upconv4(self.keepblock(h), x1))


class DeformationUNet(VM1UNet):
    """(moving, score) -> (warped (moving + 1) / 2, field in voxels); 2D blocks have two convolutions."""

    def __init__(self, ndim: int, in_channel: int = 2, encoder_nc: Sequence[int] = OFFICIAL[3]["encoder_nc"],
                 decoder_nc: Sequence[int] = OFFICIAL[3]["decoder_nc"]):
        e, d = list(encoder_nc), list(decoder_nc)
        if len(e) != 5 or len(d) != 6 or d[5] != ndim:
            raise ValueError(f"need 5 encoder and 6 decoder widths, the last = ndim ({ndim}); got {e} / {d}")
        super().__init__(ndim, in_channel, e, d, double=ndim == 2)
        self.ndim = ndim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flow = self.field(x)
        return spatial.warp((x[:, :1] + 1) / 2, flow, padding="border" if self.ndim == 2 else "zeros"), flow

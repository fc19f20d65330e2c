"""CycleMorph's registration network (Kim et al., MedIA 2021): `registUnetGenerator` of the official
code (boahK/MEDIA_CycleMorph, models/networks.py), with its parameter names (`model.inconv.block.
block.0`, ..., `model.outconv.upconv`), so an official `*_net_G_A.pth` loads with strict=True.

The layout is VoxelMorph-1's: a stride-1 convolution, four stride-2 convolutions, four transposed-
convolution upsamplings with skip concatenations (one extra convolution before the last), a last
convolution to the field; every block is one conv 3 + LeakyReLU(0.2). Written here rather than
reusing nets.diffusemorph_field (the same authors' later net) because the names of the output layer
differ and its 2D blocks have two convolutions; CycleMorph's code is 3D, and 2D here is the same
network with 2D convolutions.

forward(x = [moving, fixed]) -> (moving warped by the field, field): the field in voxels, channel
c along array axis c; the warp is linear with zeros outside the image (the official spatial
transformer pads one zero voxel and clamps, i.e. grid_sample's zero padding).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .. import spatial

# the official options (options/base_options.py, scripts/Brain_train.sh)
ENCODER = (16, 32, 32, 32, 32)
DECODER = (32, 32, 32, 8, 8)


def _conv(ndim):
    return nn.Conv2d if ndim == 2 else nn.Conv3d


class CRBlock(nn.Module):
    def __init__(self, ndim: int, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.block = nn.Sequential(_conv(ndim)(cin, cout, 3, stride=stride, padding=1), nn.LeakyReLU(0.2))

    def forward(self, x):
        return self.block(x)


class Wrapped(nn.Module):
    """The official inblock / downblock: a CRblock held as `block`."""

    def __init__(self, ndim: int, cin: int, cout: int, stride: int):
        super().__init__()
        self.block = CRBlock(ndim, cin, cout, stride)

    def forward(self, x):
        return self.block(x)


class UpBlock(nn.Module):
    def __init__(self, ndim: int, cin: int, cat_ch: int, cout: int):
        super().__init__()
        tconv = nn.ConvTranspose2d if ndim == 2 else nn.ConvTranspose3d
        self.upconv = tconv(cin, cin, 3, padding=1, stride=2, output_padding=1)
        self.block = CRBlock(ndim, cat_ch, cout)

    def forward(self, x, skip):
        return self.block(torch.cat([skip, self.upconv(x)], 1))


class OutBlock(nn.Module):
    def __init__(self, ndim: int, cin: int, cout: int):
        super().__init__()
        self.upconv = _conv(ndim)(cin, cout, 3, padding=1)   # the official name, though no upsampling

    def forward(self, x):
        return self.upconv(x)


class RegistUNet(nn.Module):
    """The official registUnetBlock."""

    def __init__(self, ndim: int, input_nc: int, encoder_nc: Sequence[int], decoder_nc: Sequence[int]):
        super().__init__()
        e, d = list(encoder_nc), list(decoder_nc) + [ndim]
        self.inconv = Wrapped(ndim, input_nc, e[0], 1)
        self.downconv1 = Wrapped(ndim, e[0], e[1], 2)
        self.downconv2 = Wrapped(ndim, e[1], e[2], 2)
        self.downconv3 = Wrapped(ndim, e[2], e[3], 2)
        self.downconv4 = Wrapped(ndim, e[3], e[4], 2)
        self.upconv1 = UpBlock(ndim, e[4], e[4] + e[3], d[0])
        self.upconv2 = UpBlock(ndim, d[0], d[0] + e[2], d[1])
        self.upconv3 = UpBlock(ndim, d[1], d[1] + e[1], d[2])
        self.keepblock = CRBlock(ndim, d[2], d[3])
        self.upconv4 = UpBlock(ndim, d[3], d[3] + e[0], d[4])
        self.outconv = OutBlock(ndim, d[4], d[5])

    def forward(self, x):
        x1 = self.inconv(x)
        x2 = self.downconv1(x1)
        x3 = self.downconv2(x2)
        x4 = self.downconv3(x3)
        x5 = self.downconv4(x4)
        h = self.upconv3(self.upconv2(self.upconv1(x5, x4), x3), x2)
        return self.outconv(self.upconv4(self.keepblock(h), x1))


def init_normal(module: nn.Module, std: float = 1e-5) -> None:
    """The official `init_type normal`: every (transposed) convolution weight ~ N(0, 1e-5), biases
    at PyTorch's default, so the first fields are ~ the last bias (near the identity)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
            nn.init.normal_(m.weight, 0.0, std)


class CycleMorphNet(nn.Module):
    multiple = 16

    def __init__(self, ndim: int, input_nc: int = 2, encoder_nc: Sequence[int] = ENCODER,
                 decoder_nc: Sequence[int] = DECODER, init: str = "normal"):
        super().__init__()
        if len(encoder_nc) != 5 or len(decoder_nc) != 5:
            raise ValueError(f"CycleMorph needs 5 encoder and 5 decoder widths, got {encoder_nc} / {decoder_nc}")
        self.ndim = ndim
        self.model = RegistUNet(ndim, input_nc, encoder_nc, decoder_nc)
        if init == "normal":
            init_normal(self)
        elif init != "default":
            raise ValueError(f"CycleMorph init must be 'normal' (official) or 'default', got {init!r}")

    def field(self, x: torch.Tensor) -> torch.Tensor:
        if any(n % self.multiple for n in x.shape[2:]):
            raise ValueError(f"CycleMorph input {tuple(x.shape[2:])}: every side must be a multiple of 16")
        return self.model(x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flow = self.field(x)
        return spatial.warp(x[:, :1], flow, padding="zeros"), flow

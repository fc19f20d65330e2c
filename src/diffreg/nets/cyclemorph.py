"""CycleMorph's registration network (Kim et al., MedIA 2021): `registUnetGenerator` of the official
code (boahK/MEDIA_CycleMorph, models/networks.py), with its parameter names (`model.inconv.block.
block.0`, ..., `model.outconv.upconv`), so an official `*_net_G_A.pth` loads with strict=True.

The layout is VoxelMorph-1's: a stride-1 convolution, four stride-2 convolutions, four transposed-
convolution upsamplings with skip concatenations (one extra convolution before the last), a last
convolution to the field; every block is one conv 3 + LeakyReLU(0.2). The trunk is
nets.diffusemorph_field.VM1UNet (the same authors' net in DiffuseMorph) with one convolution per
block and the last layer under CycleMorph's name; CycleMorph's code is 3D, and 2D here is the same
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
from .diffusemorph_field import VM1UNet

# the official options (options/base_options.py, scripts/Brain_train.sh)
ENCODER = (16, 32, 32, 32, 32)
DECODER = (32, 32, 32, 8, 8)


class RegistUNet(VM1UNet):
    """The official registUnetBlock: one convolution per block, the last layer named `upconv`."""

    def __init__(self, ndim: int, input_nc: int, encoder_nc: Sequence[int], decoder_nc: Sequence[int]):
        super().__init__(ndim, input_nc, list(encoder_nc), list(decoder_nc) + [ndim], double=False, out_name="upconv")

    def forward(self, x):
        return VM1UNet.field(self, x)


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

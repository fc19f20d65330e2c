"""SYMNet's network (Mok & Chung, CVPR 2020): the U-Net of the official code
(cwmok/Fast-Symmetric-Diffeomorphic-Image-Registration-with-Convolutional-Neural-Networks,
Code/Models.py `SYMNet`), with its parameter names (eninput, ec1..ec9, dc1..dc10, up1..up4, each
an nn.Sequential with the convolution at index 0), so an official state dict loads with
strict=True.

Written here, not imported, because the official module is a training script's helper (CUDA
calls, 3D only); the architecture is the same in 2D with Conv2d (the paper is 3D only).

forward(x, y) -> (v_xy, v_yx): two velocity fields in the official units, i.e. softsign outputs
in (-1, 1) that the official code multiplies by `range_flow` (100) to get voxels, with channel c
along array axis D-1-c (grid_sample's x, y, z order). `to_voxels` turns them into this project's
convention (voxels, channel c along array axis c).
"""
from __future__ import annotations

import torch
from torch import nn

# the official training script's widths (Train_sym_onepass.py: start_channel 8; the OASIS
# example script and its released model use 7)
OFFICIAL = dict(in_channel=2, start_channel=8)


def to_voxels(v: torch.Tensor, range_flow: float) -> torch.Tensor:
    """Official field units and axis order -> voxels along array axes."""
    return v.flip(1) * range_flow


class SYMNetUNet(nn.Module):
    multiple = 16          # four stride-2 convolutions, transposed convolutions of stride 2

    def __init__(self, ndim: int, in_channel: int = 2, start_channel: int = 8):
        super().__init__()
        self.ndim = ndim
        conv = nn.Conv2d if ndim == 2 else nn.Conv3d
        tconv = nn.ConvTranspose2d if ndim == 2 else nn.ConvTranspose3d
        c = start_channel

        def enc(cin, cout, stride=1):          # conv 3, padding 1, bias, ReLU (official `encoder`)
            return nn.Sequential(conv(cin, cout, 3, stride=stride, padding=1, bias=True), nn.ReLU())

        def dec(cin, cout):                    # transposed conv 2, stride 2, ReLU (official `decoder`)
            return nn.Sequential(tconv(cin, cout, 2, stride=2, bias=True), nn.ReLU())

        def out(cin):                          # conv 5, no bias, softsign (official `outputs`)
            return nn.Sequential(conv(cin, ndim, 5, padding=2, bias=False), nn.Softsign())

        self.eninput = enc(in_channel, c)
        self.ec1 = enc(c, c)
        self.ec2 = enc(c, 2 * c, 2)
        self.ec3 = enc(2 * c, 2 * c)
        self.ec4 = enc(2 * c, 4 * c, 2)
        self.ec5 = enc(4 * c, 4 * c)
        self.ec6 = enc(4 * c, 8 * c, 2)
        self.ec7 = enc(8 * c, 8 * c)
        self.ec8 = enc(8 * c, 16 * c, 2)
        self.ec9 = enc(16 * c, 8 * c)
        self.dc1 = enc(16 * c, 8 * c)
        self.dc2 = enc(8 * c, 4 * c)
        self.dc3 = enc(8 * c, 4 * c)
        self.dc4 = enc(4 * c, 2 * c)
        self.dc5 = enc(4 * c, 4 * c)
        self.dc6 = enc(4 * c, 2 * c)
        self.dc7 = enc(3 * c, 2 * c)
        self.dc8 = enc(2 * c, 2 * c)
        self.dc9 = out(2 * c)
        self.dc10 = out(2 * c)
        self.up1 = dec(8 * c, 8 * c)
        self.up2 = dec(4 * c, 4 * c)
        self.up3 = dec(2 * c, 2 * c)
        self.up4 = dec(2 * c, 2 * c)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if any(n % self.multiple for n in x.shape[2:]):
            raise ValueError(f"SYMNet input {tuple(x.shape[2:])}: every side must be a multiple of 16")
        e0 = self.ec1(self.eninput(torch.cat([x, y], 1)))
        e1 = self.ec3(self.ec2(e0))
        e2 = self.ec5(self.ec4(e1))
        e3 = self.ec7(self.ec6(e2))
        e4 = self.ec9(self.ec8(e3))
        d = self.dc2(self.dc1(torch.cat([self.up1(e4), e3], 1)))
        d = self.dc4(self.dc3(torch.cat([self.up2(d), e2], 1)))
        d = self.dc6(self.dc5(torch.cat([self.up3(d), e1], 1)))
        d = self.dc8(self.dc7(torch.cat([self.up4(d), e0], 1)))
        return self.dc9(d), self.dc10(d)

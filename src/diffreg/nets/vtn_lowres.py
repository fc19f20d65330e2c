"""DiffuseReg's first stage φ₀: the official 4-level "lowRes" VTN (KUJOYUTA/DiffuseReg
`model/diffusion_3D/unet.py:523-691`), an affine stem plus `n_cascades` deformable cascades.

Not the 6-level TF-style VTN of `nets/vtn.py` (the VTN baseline): this one downsamples four times
(16 channels, x2 per level), puts the LeakyReLU(0.1) *before* each convolution (the official
comment: "reverse to origin paper"), predicts the flow at 1/16 and refines it at 1/8, 1/4, 1/2
and full resolution (x 20 / n_cascades), and its affine stem regresses W (3 x 3) and b from the
1/16 features with a convolution whose kernel is the whole 1/16 grid: (2, 8, 8) at the official
32 x 128 x 128, here `im_size // 16`, so any size divisible by 16 works.

Cascades compose as the official `RecursiveCascadeNetwork`: the first deformable flow is mapped by
(W + I) and added to the affine flow; later ones compose as warp(agg, f) + f. Warps are the
official `SpatialTransform` (bilinear, zeros outside, align_corners): `spatial.warp(..., "zeros")`
in value, with the sampling grid computed in the official order of operations (`zero_padded_warp`),
because the flows of a randomly initialised VTN reach tens of voxels and a rounding difference in
the grid (1e-5 voxels) would otherwise grow through the cascades.
Parameter names are the official ones under `stems.<i>.`; the official checkpoint
(`{"cascade <i>": state}`) loads with `load_official` (strict).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

import torch.nn.functional as F


def zero_padded_warp(img: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """img(x + flow(x)), bilinear, zeros outside, voxel units in array-axis order: the values of
    `spatial.warp(img, flow, padding="zeros")`, with the official grid arithmetic."""
    shape = flow.shape[2:]
    grid = torch.stack(torch.meshgrid(*[torch.arange(0, s, device=flow.device, dtype=flow.dtype) for s in shape],
                                      indexing="ij")).unsqueeze(0)
    loc = grid + flow
    loc = torch.stack([2 * (loc[:, i] / (shape[i] - 1) - 0.5) for i in range(len(shape))], dim=-1)
    return F.grid_sample(img, loc.flip(-1), mode="bilinear", align_corners=True)


def _conv_act(cin, cout, stride):
    return nn.Sequential(nn.LeakyReLU(0.1), nn.Conv3d(cin, cout, 3, stride=stride, padding=1))


def _up(cin, cout):
    return nn.ConvTranspose3d(cin, cout, 4, 2, padding=1)


def _up_act(cin, cout):
    return nn.Sequential(nn.LeakyReLU(0.1), _up(cin, cout))


def affine_flow(W: torch.Tensor, b: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """The official `affine_flow`: W[:, :, 0] multiplies the centred coordinate of the last axis,
    W[:, :, 2] the first; b (B, 3)."""
    sd, sh, sw = size
    dev = W.device
    xr = torch.arange(-(sw - 1) / 2.0, sw / 2.0, 1.0, device=dev).view(1, 1, 1, 1, -1)
    yr = torch.arange(-(sh - 1) / 2.0, sh / 2.0, 1.0, device=dev).view(1, 1, 1, -1, 1)
    zr = torch.arange(-(sd - 1) / 2.0, sd / 2.0, 1.0, device=dev).view(1, 1, -1, 1, 1)
    w = [W[:, :, i].reshape(-1, 3, 1, 1, 1) for i in range(3)]
    return xr * w[0] + yr * w[1] + zr * w[2] + b.view(-1, 3, 1, 1, 1)


class VTNAffineStemLowRes(nn.Module):
    def __init__(self, im_size: Sequence[int] = (32, 128, 128), channels: int = 16, flow_multiplier: float = 1.0):
        super().__init__()
        if any(s % 16 for s in im_size):
            raise ValueError(f"the lowRes VTN needs every axis divisible by 16, got {tuple(im_size)}")
        self.im_size, self.flow_multiplier = tuple(im_size), flow_multiplier
        c = channels
        self.conv1 = _conv_act(2, c, 2)
        self.conv2 = _conv_act(c, 2 * c, 2)
        self.conv3 = _conv_act(2 * c, 4 * c, 2)
        self.conv3_1 = _conv_act(4 * c, 4 * c, 1)
        self.conv4 = _conv_act(4 * c, 8 * c, 2)
        self.conv4_1 = _conv_act(8 * c, 8 * c, 1)
        ks = tuple(s // 16 for s in im_size)      # the whole 1/16 grid: (2, 8, 8) at 32 x 128 x 128
        self.conv7_W = nn.Conv3d(8 * c, 9, ks, 1, bias=False)
        self.conv7_b = nn.Conv3d(8 * c, 3, ks, 1, bias=False)

    def forward(self, fixed, moving):
        x = torch.cat((fixed, moving), dim=1)
        for name in ("conv1", "conv2", "conv3", "conv3_1", "conv4", "conv4_1"):
            x = getattr(self, name)(x)
        W = self.conv7_W(x).reshape(-1, 3, 3) * self.flow_multiplier
        b = self.conv7_b(x).reshape(-1, 3) * self.flow_multiplier
        return {"flow": affine_flow(W, b, self.im_size), "W": W, "b": b}


class VTNLowRes(nn.Module):
    """One deformable cascade (4 levels, flow x 20 x flow_multiplier)."""

    def __init__(self, channels: int = 16, flow_multiplier: float = 1.0, dim: int = 3):
        super().__init__()
        c, self.flow_multiplier = channels, flow_multiplier
        self.conv1 = _conv_act(2, c, 2)
        self.conv2 = _conv_act(c, 2 * c, 2)
        self.conv3 = _conv_act(2 * c, 4 * c, 2)
        self.conv3_1 = _conv_act(4 * c, 4 * c, 1)
        self.conv4 = _conv_act(4 * c, 8 * c, 2)
        self.conv4_1 = _conv_act(8 * c, 8 * c, 1)
        self.pred4 = nn.Conv3d(8 * c, dim, 3, 1, padding=1)
        self.upsamp4to3 = _up(dim, dim)
        self.deconv3 = _up_act(8 * c, 4 * c)
        self.pred3 = nn.Conv3d(8 * c + dim, dim, 3, 1, padding=1)
        self.upsamp3to2 = _up(dim, dim)
        self.deconv2 = _up_act(8 * c + dim, 2 * c)
        self.pred2 = nn.Conv3d(4 * c + dim, dim, 3, 1, padding=1)
        self.upsamp2to1 = _up(dim, dim)
        self.deconv1 = _up_act(4 * c + dim, c)
        self.pred0 = _up(2 * c + dim, dim)

    def forward(self, fixed, moving):
        x1 = self.conv1(torch.cat((fixed, moving), dim=1))
        x2 = self.conv2(x1)
        x3_1 = self.conv3_1(self.conv3(x2))
        x4_1 = self.conv4_1(self.conv4(x3_1))
        concat3 = torch.cat([x3_1, self.deconv3(x4_1), self.upsamp4to3(self.pred4(x4_1))], dim=1)
        concat2 = torch.cat([x2, self.deconv2(concat3), self.upsamp3to2(self.pred3(concat3))], dim=1)
        concat1 = torch.cat([x1, self.deconv1(concat2), self.upsamp2to1(self.pred2(concat2))], dim=1)
        return {"flow": self.pred0(concat1) * 20 * self.flow_multiplier}


class LowResVTN(nn.Module):
    """Affine stem + `n_cascades` lowRes cascades (official: 3). forward(fixed, moving) ->
    (aggregated flows, warped images, per-stem results), as `RecursiveCascadeNetwork`."""

    def __init__(self, im_size: Sequence[int] = (32, 128, 128), n_cascades: int = 3, channels: int = 16):
        super().__init__()
        self.im_size, self.n_cascades = tuple(im_size), n_cascades
        self.stems = nn.ModuleList([VTNAffineStemLowRes(im_size, channels)]
                                   + [VTNLowRes(channels, 1.0 / n_cascades) for _ in range(n_cascades)])

    @staticmethod
    def _warp(img, flow):
        return zero_padded_warp(img, flow)

    def forward(self, fixed, moving):
        results = []
        res = self.stems[0](fixed, moving)
        res["warped"] = self._warp(moving, res["flow"])
        res["agg_flow"] = res["flow"]
        results.append(res)
        eye = torch.eye(3, dtype=fixed.dtype, device=fixed.device).reshape(1, 3, 3)
        for stem in self.stems[1:]:
            prev = results[-1]
            res = stem(fixed, prev["warped"])
            if len(results) == 1:      # after the affine stem: map the flow by (W + I), add the affine flow
                res["agg_flow"] = torch.einsum("bij,bjxyz->bixyz", prev["W"] + eye, res["flow"]) + prev["flow"]
            else:
                res["agg_flow"] = self._warp(prev["agg_flow"], res["flow"]) + res["flow"]
            res["warped"] = self._warp(moving, res["agg_flow"])
            results.append(res)
        return [r["agg_flow"] for r in results], [r["warped"] for r in results], results

    def load_official(self, checkpoint: dict) -> None:
        """The official checkpoint layout {"cascade <i>": stem state dict}, strictly."""
        for i, stem in enumerate(self.stems):
            stem.load_state_dict(checkpoint[f"cascade {i}"], strict=True)

    def official_state(self) -> dict:
        return {f"cascade {i}": stem.state_dict() for i, stem in enumerate(self.stems)}

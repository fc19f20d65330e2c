"""VTN's networks (Zhao et al., "Recursive Cascaded Networks for Unsupervised Medical Image
Registration", ICCV 2019; "Unsupervised 3D end-to-end medical image registration with volume
tweening network", JBHI 2019), written in PyTorch after the structure of the official TensorFlow 1
code (microsoft/Recursive-Cascaded-Networks, network/base_networks.py `VTN`, `VTNAffineStem`),
with its layer names. The official code is 3D; 2D uses the same layers with 2D convolutions.

`VTNNet` (one deformable cascade): input concat(fixed, warped moving); six stride-2 convolutions
(widths c, 2c, 4c, 8c, 16c, 32c, the last four levels followed by a stride-1 convolution), then a
decoder that at every level predicts a field (`pred<k>`), upsamples it (`upsamp<k>to<k-1>`,
transposed convolution 4, no bias), upsamples the features (`deconv<k-1>`, transposed convolution
4 + LeakyReLU 0.1, no bias) and concatenates both with the encoder's skip; the full-resolution
field is the transposed convolution `upsamp1to0` of the last concatenation, times 20 (the code's
scale) and the cascade's multiplier (1 / number of cascades). Every convolution is kernel 3,
"same" padding, bias, LeakyReLU 0.1.

`VTNAffineStem`: the same encoder (fixed widths 16..512 in the code), then two convolutions without
bias whose kernel spans the whole last feature map: W (D x D) and b (D); A = I + W, and the field is
u(x) = W (x - centre) + b on the input grid. Its losses are the determinant loss (det A - 1)^2 / 2 and
the orthogonality loss tr(C) + (1 + eps)^2 tr(C^-1) - 2 D (1 + eps), C = A^T A + eps I, eps 1e-5
(the code writes the 3 x 3 case with the eigenvalues' symmetric polynomials; tr(C^-1) = s2 / s3).

Fields are in voxels, channel c along array axis c, backward maps (as the code's transformer).
The last layers start at zero (ours; TensorFlow's uniform-scaling init gives random first fields),
so an untrained network is the identity.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

FLOW_SCALE = 20.0          # the code's `pred0 * 20`
LEVELS = 6                 # stride-2 convolutions: sides must be multiples of 2^6


def _conv(ndim: int):
    return nn.Conv2d if ndim == 2 else nn.Conv3d


def _tconv(ndim: int):
    return nn.ConvTranspose2d if ndim == 2 else nn.ConvTranspose3d


def conv_lrelu(ndim: int, cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(_conv(ndim)(cin, cout, 3, stride=stride, padding=1), nn.LeakyReLU(0.1))


class _Encoder(nn.Module):
    """conv1 .. conv6_1 of both VTN networks; returns the features each decoder level needs."""
    multiple = 2 ** LEVELS

    def _build_encoder(self, ndim: int, cin: int, c: int) -> list[int]:
        widths = [c * 2 ** k for k in range(LEVELS)]
        self.conv1 = conv_lrelu(ndim, cin, widths[0], 2)
        self.conv2 = conv_lrelu(ndim, widths[0], widths[1], 2)
        for k in range(3, LEVELS + 1):          # conv3, conv3_1, ..., conv6, conv6_1
            setattr(self, f"conv{k}", conv_lrelu(ndim, widths[k - 2], widths[k - 1], 2))
            setattr(self, f"conv{k}_1", conv_lrelu(ndim, widths[k - 1], widths[k - 1], 1))
        return widths

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        if any(n % self.multiple for n in x.shape[2:]):
            raise ValueError(f"VTN input {tuple(x.shape[2:])}: every side must be a multiple of {self.multiple}")
        feats = [self.conv1(x)]
        feats.append(self.conv2(feats[-1]))
        for k in range(3, LEVELS + 1):
            feats.append(getattr(self, f"conv{k}_1")(getattr(self, f"conv{k}")(feats[-1])))
        return feats                             # conv1, conv2, conv3_1, ..., conv6_1


class VTNNet(_Encoder):
    """(B, 2, *S) = concat(fixed, moving) -> displacement (B, D, *S) in voxels."""

    def __init__(self, ndim: int, in_channels: int = 2, channels: int = 16, flow_multiplier: float = 1.0,
                 flow_scale: float = FLOW_SCALE):
        super().__init__()
        if ndim not in (2, 3):
            raise ValueError(f"VTN is 2D or 3D, got ndim={ndim}")
        self.ndim, self.scale = ndim, flow_scale * flow_multiplier
        w = self._build_encoder(ndim, in_channels, channels)
        conv, tconv = _conv(ndim), _tconv(ndim)
        cin = w[-1]                                      # conv6_1 feeds pred6 and deconv5
        for k in range(LEVELS, 1, -1):                   # levels 6 .. 2
            setattr(self, f"pred{k}", conv(cin, ndim, 3, padding=1))
            setattr(self, f"upsamp{k}to{k - 1}", tconv(ndim, ndim, 4, stride=2, padding=1, bias=False))
            setattr(self, f"deconv{k - 1}", nn.Sequential(tconv(cin, w[k - 2], 4, stride=2, padding=1, bias=False),
                                                          nn.LeakyReLU(0.1)))
            cin = 2 * w[k - 2] + ndim                    # concat<k-1> = [skip, deconv, upsampled field]
        self.upsamp1to0 = tconv(cin, ndim, 4, stride=2, padding=1, bias=False)
        nn.init.zeros_(self.upsamp1to0.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.encode(x)
        h = feats[-1]
        for k in range(LEVELS, 1, -1):
            up_flow = getattr(self, f"upsamp{k}to{k - 1}")(getattr(self, f"pred{k}")(h))
            h = torch.cat([feats[k - 2], getattr(self, f"deconv{k - 1}")(h), up_flow], 1)
        return self.upsamp1to0(h) * self.scale


def centred_grid(shape: Sequence[int], device=None, dtype=torch.float32) -> torch.Tensor:
    """(D, *S) voxel coordinates minus the centre (n - 1) / 2 of each axis (the code's affine_flow)."""
    axes = [torch.arange(n, device=device, dtype=dtype) - (n - 1) / 2 for n in shape]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"))


class VTNAffineStem(_Encoder):
    """(B, 2, *S) -> (displacement (B, D, *S), W (B, D, D), b (B, D)) for inputs of exactly `size`
    (the last two convolutions span the last feature map, as in the code)."""

    def __init__(self, ndim: int, size: Sequence[int], in_channels: int = 2, channels: int = 16,
                 flow_multiplier: float = 1.0):
        super().__init__()
        size = tuple(int(n) for n in size)
        if len(size) != ndim or any(n < self.multiple or n % self.multiple for n in size):
            raise ValueError(f"VTN affine stem: size {size} must have {ndim} sides, multiples of {self.multiple}")
        self.ndim, self.size, self.flow_multiplier = ndim, size, flow_multiplier
        w = self._build_encoder(ndim, in_channels, channels)
        kernel = tuple(n // self.multiple for n in size)
        self.conv7_W = _conv(ndim)(w[-1], ndim * ndim, kernel, bias=False)
        self.conv7_b = _conv(ndim)(w[-1], ndim, kernel, bias=False)
        nn.init.zeros_(self.conv7_W.weight)
        nn.init.zeros_(self.conv7_b.weight)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if tuple(x.shape[2:]) != self.size:
            raise ValueError(f"VTN affine stem built for inputs {self.size}, got {tuple(x.shape[2:])}")
        h = self.encode(x)[-1]
        d = self.ndim
        W = self.conv7_W(h).reshape(-1, d, d) * self.flow_multiplier
        b = self.conv7_b(h).reshape(-1, d) * self.flow_multiplier
        grid = centred_grid(self.size, x.device, x.dtype)
        flow = torch.einsum("bij,j...->bi...", W, grid) + b.view(-1, d, *([1] * d))
        return flow, W, b


def det_loss(W: torch.Tensor) -> torch.Tensor:
    """sum over the batch of (det(I + W) - 1)^2 / 2 (the code's tf.nn.l2_loss(det - 1))."""
    eye = torch.eye(W.shape[-1], dtype=W.dtype, device=W.device)
    return 0.5 * ((torch.linalg.det(W + eye) - 1) ** 2).sum()


def ortho_loss(W: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """sum over the batch of tr(C) + (1 + eps)^2 tr(C^-1) - 2 D (1 + eps), C = A^T A + eps I:
    sum_i k_i + (1 + eps)^2 / k_i over C's eigenvalues, least (0) when A is orthogonal."""
    d = W.shape[-1]
    eye = torch.eye(d, dtype=W.dtype, device=W.device)
    A = W + eye
    C = A.transpose(-1, -2) @ A + eps * eye
    tr = lambda M: M.diagonal(dim1=-2, dim2=-1).sum(-1)  # noqa: E731
    return (tr(C) + (1 + eps) ** 2 * tr(torch.linalg.inv(C)) - 2 * d * (1 + eps)).sum()

"""The registration network of the official DGIR code (uncbiag/dgir, which carries ICON's
`icon_registration` networks and wrappers): `tallUNet2` steps in a coarse-to-fine ICON chain.

`TallUNet2`: a 5-level U-Net on cat([A, B]) (encoder 2-16-32-64-256-512, decoder 16-32-64-128-256),
leaky ReLU, stride-2 convolutions with residual average-pool shortcuts, transposed convolutions
with residual bilinear/trilinear shortcuts, BatchNorm after each decoder level, a zero-initialised
last convolution; output / 10 is a displacement in [0, 1] coordinates. Parameter names follow the
official module (`downConvs.i`, `upConvs.i`, `batchNorms.i`, `lastConv`), so an official state
dict loads with strict=True (tests/unit/test_dgir_fidelity.py, benchmarks/dgir_fidelity.py).

`DGIRNet` (backbone "dgir_official"): `levels` + 1 such U-Nets. Step 0 runs on the images average
pooled `levels` times (ceil mode), step k on images pooled `levels - k` times, each on the moving
image warped by the map of the steps before it, and the maps compose as in ICON's
TwoStepRegistration / DownsampleRegistration / FunctionFromVectorField: coordinates in [0, 1] per
axis (spacing 1/(N - 1)), a step's displacement sampled with grid_sample (bilinear, align_corners,
border padding). The state dict has the official key names of the regis_net of DGIR's
DiffusionRegularizedNet (`netPhi.net. ... .netPsi.net.<unet>`). forward returns the displacement
in voxels (diffreg's convention).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

# the official tallUNet2 widths
TALL_DOWN = (2, 16, 32, 64, 256, 512)
TALL_UP = (16, 32, 64, 128, 256)


def _channels_to(x: torch.Tensor, c: int) -> torch.Tensor:
    """Keep the first c channels, or put zero channels in front up to c (ICON's pad_or_crop)."""
    y = x[:, :c]
    if y.shape[1] < c:
        y = torch.cat([y.new_zeros((y.shape[0], c - y.shape[1], *y.shape[2:])), y], 1)
    return y


class TallUNet2(nn.Module):
    def __init__(self, ndim: int, down: Sequence[int] = TALL_DOWN, up: Sequence[int] = TALL_UP):
        super().__init__()
        if len(down) != len(up) + 1:
            raise ValueError(f"need len(down) == len(up) + 1, got {list(down)} / {list(up)}")
        self.ndim = ndim
        conv = nn.Conv2d if ndim == 2 else nn.Conv3d
        tconv = nn.ConvTranspose2d if ndim == 2 else nn.ConvTranspose3d
        bn = nn.BatchNorm2d if ndim == 2 else nn.BatchNorm3d
        self.levels = len(up)
        up_in = [down[d + 1] + (up[d + 1] if d + 1 < len(up) else 0) for d in range(self.levels)]
        self.downConvs = nn.ModuleList(conv(down[d], down[d + 1], 3, padding=1, stride=2)
                                       for d in range(self.levels))
        self.upConvs = nn.ModuleList(tconv(up_in[d], up[d], 4, padding=1, stride=2)
                                     for d in range(self.levels))
        self.batchNorms = nn.ModuleList(bn(up[d]) for d in range(self.levels))
        self.lastConv = conv(down[0] + up[0], ndim, 3, padding=1)
        nn.init.zeros_(self.lastConv.weight)
        nn.init.zeros_(self.lastConv.bias)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        pool = F.avg_pool2d if self.ndim == 2 else F.avg_pool3d
        mode = "bilinear" if self.ndim == 2 else "trilinear"
        x = torch.cat([a, b], 1)
        skips = []
        for d in range(self.levels):
            skips.append(x)
            y = self.downConvs[d](F.leaky_relu(x))
            x = y + _channels_to(pool(x, 2, ceil_mode=True), y.shape[1])
        for d in reversed(range(self.levels)):
            y = self.upConvs[d](F.leaky_relu(x))
            x = y + F.interpolate(_channels_to(x, y.shape[1]), scale_factor=2, mode=mode, align_corners=False)
            x = self.batchNorms[d](x)
            x = x[(slice(None), slice(None), *(slice(0, n) for n in skips[d].shape[2:]))]
            x = torch.cat([x, skips[d]], 1)
        return self.lastConv(x) / 10


# ------------------------------------------------------------------ ICON's map algebra in [0, 1]
def identity01(shape: Sequence[int], device=None, dtype=torch.float32) -> torch.Tensor:
    """(1, D, *S) coordinates in [0, 1] along each axis (ICON's identity map)."""
    axes = [torch.arange(n, device=device, dtype=dtype) / max(n - 1, 1) for n in shape]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"))[None]


def sample01(field: torch.Tensor, coords: torch.Tensor, padding: str = "border") -> torch.Tensor:
    """field (B, C, *S) at coordinates (B or 1, D, *T) in [0, 1] (bilinear; ICON's default border
    padding, or "zeros" as its zero_boundary warps)."""
    grid = (coords * 2 - 1).flip(1)
    if grid.shape[0] == 1 and field.shape[0] != 1:
        grid = grid.expand(field.shape[0], *grid.shape[1:])
    grid = grid.permute(0, *range(2, grid.ndim), 1)
    return F.grid_sample(field, grid, mode="bilinear", padding_mode=padding, align_corners=True)


class _Function(nn.Module):
    """FunctionFromVectorField: x -> x + net(A, B) sampled at x (state dict key `net`)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, a, b):
        disp = self.net(a, b)

        def transform(x, is_identity=False):
            if is_identity and x.shape == disp.shape:   # the official shortcut (batch of 1 only)
                return x + disp
            return x + sample01(disp, x)
        return transform


class _Down(nn.Module):
    """DownsampleRegistration: the inner registration on the images average pooled by 2."""

    def __init__(self, net: nn.Module, ndim: int):
        super().__init__()
        self.net = net
        self.ndim = ndim

    def forward(self, a, b):
        pool = F.avg_pool2d if self.ndim == 2 else F.avg_pool3d
        return self.net(pool(a, 2, ceil_mode=True), pool(b, 2, ceil_mode=True))


class _TwoStep(nn.Module):
    """TwoStepRegistration: phi = netPhi(A, B), psi = netPsi(A o phi, B), map phi o psi."""

    def __init__(self, phi: nn.Module, psi: nn.Module):
        super().__init__()
        self.netPhi = phi
        self.netPsi = psi

    def forward(self, a, b):
        ident = identity01(a.shape[2:], a.device, a.dtype)
        phi = self.netPhi(a, b)
        psi = self.netPsi(sample01(a, phi(ident, True)), b)
        return lambda x, is_identity=False: phi(psi(x, is_identity))


class DGIRNet(nn.Module):
    """The ICON chain of tallUNet2 steps (module docstring): DGIR's registration network with
    `levels` = 3; uniGradICON's with `levels` = 2 and `last_step` (one more full-resolution step
    composed after the chain). forward(x = [A, B]) -> voxels; `net(A, B)` -> the map phi_AB as a
    function of [0, 1] coordinates."""

    def __init__(self, ndim: int, levels: int = 3, down: Sequence[int] = TALL_DOWN,
                 up: Sequence[int] = TALL_UP, last_step: bool = False):
        super().__init__()
        self.ndim = ndim
        net: nn.Module = _Function(TallUNet2(ndim, down, up))
        for _ in range(levels):
            net = _TwoStep(_Down(net, ndim), _Function(TallUNet2(ndim, down, up)))
        if last_step:
            net = _TwoStep(net, _Function(TallUNet2(ndim, down, up)))
        self.net = net
        # avg_pool3d refuses a side of 1 (avg_pool2d pads it), and the chain halves `levels` + 4
        # times before its last pooling: 3D volumes need ceil(n / 2^levels) >= 2^4 + 1 per axis
        self.min_side = 2 ** levels * 2 ** (len(up) - 1) + 1 if ndim == 3 else 1

    def map01(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """phi_AB at the identity map, (B, D, *S) in [0, 1] coordinates (the official phi_AB_vectorfield)."""
        ident = identity01(a.shape[2:], a.device, a.dtype)
        return self.net(a, b)(ident, True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != self.ndim + 2 or x.shape[1] != 2:
            raise ValueError(f"expected (B, 2, *S) with {self.ndim} spatial axes, got {tuple(x.shape)}")
        if min(x.shape[2:]) < self.min_side:
            raise ValueError(f"the official DGIR network needs volumes of at least {self.min_side} voxels "
                             f"per axis, got {tuple(x.shape[2:])} (the 'small' network takes any size)")
        a, b = x[:, :1], x[:, 1:]
        shape = x.shape[2:]
        phi = self.map01(a, b)
        scale = torch.tensor([max(n - 1, 1) for n in shape], dtype=x.dtype, device=x.device)
        return (phi - identity01(shape, x.device, x.dtype)) * scale.view(1, -1, *([1] * self.ndim))

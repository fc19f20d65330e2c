"""Registration backbones: forward(x (B, 2, *S) = [moving, fixed]) -> displacement (B, D, *S) in voxels.

Registry ``BACKBONES``; ``build_backbone(name, ndim, **kw)``. Every backbone starts near the
identity map (flow heads initialised to ~0).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from diffreg import spatial
from diffreg.registry import Registry

from .corrmlp import CorrMLP
from .swin import SwinEncoder
from .swin_unet import SWIN_UNET_SIZES, SwinUnet
from .tallunet import DGIRNet, TALL_DOWN, TALL_UP
from .transmatch import TransMatch
from .unet import VM_WIDTHS, ConvAct, VoxelMorphUNet, flow_head
from .uvit import UVIT_SIZES, UViT

BACKBONES: Registry[nn.Module] = Registry("backbone")


def build_backbone(name: str, ndim: int, **kwargs) -> nn.Module:
    return BACKBONES.build(name, ndim=ndim, **kwargs)


def _check_input(x: torch.Tensor, ndim: int, channels: int = 2) -> None:
    if x.ndim != ndim + 2 or x.shape[1] != channels:
        raise ValueError(f"expected (B, {channels}, *S) with {ndim} spatial axes, got {tuple(x.shape)}")


@BACKBONES.register("voxelmorph")
class VoxelMorph(nn.Module):
    """VoxelMorph U-Net + flow head; ``variant`` "vm1" or "vm2" picks the paper's widths."""

    def __init__(self, ndim: int, variant: str = "vm2", in_channels: int = 2, **widths):
        super().__init__()
        if variant not in VM_WIDTHS:
            raise ValueError(f"VoxelMorph variant must be one of {sorted(VM_WIDTHS)}, got {variant!r}")
        self.ndim = ndim
        self.in_channels = in_channels
        self.unet = VoxelMorphUNet(ndim, in_channels, **{**VM_WIDTHS[variant], **widths})
        self.flow = flow_head(ndim, self.unet.out_channels)

    def forward(self, x):
        _check_input(x, self.ndim, self.in_channels)
        return self.flow(self.unet(x))


@BACKBONES.register("vm-diff")
class VoxelMorphDiff(nn.Module):
    """VoxelMorph-diff (Dalca et al. 2018): the U-Net predicts a stationary velocity field, integrated
    by scaling and squaring (``steps``) at 1/``int_downsize`` resolution, then resized back."""

    def __init__(self, ndim: int, variant: str = "vm2", steps: int = 7, int_downsize: int = 2, **kw):
        super().__init__()
        self.velocity_net = VoxelMorph(ndim, variant, **kw)
        self.ndim = ndim
        self.steps = steps
        self.int_downsize = int_downsize

    def velocity(self, x):
        return self.velocity_net(x)

    def forward(self, x):
        v = self.velocity(x)
        shape = v.shape[2:]
        if self.int_downsize > 1:
            v = spatial.resize_field(v, [max(2, n // self.int_downsize) for n in shape])
        u = spatial.integrate_velocity(v, self.steps)
        return spatial.resize_field(u, shape) if self.int_downsize > 1 else u


def resize_image(x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Resample images with the align_corners=True geometry shared with spatial.resize_field."""
    if tuple(x.shape[2:]) == tuple(shape):
        return x
    mode = "bilinear" if x.ndim == 4 else "trilinear"
    return F.interpolate(x, size=tuple(shape), mode=mode, align_corners=True)


@BACKBONES.register("icon")
class ICONMultiStep(nn.Module):
    """ICON / GradICON multi-step network (Greer et al. 2021, Tian et al. 2023).

    A sequence of U-Net steps at decreasing downsampling factors ``scales`` (default (2, 2, 1): the
    GradICON net, two steps at half resolution composed, then one at full resolution; DGIR's uses
    (8, 4, 2, 1)). Step k sees [moving warped by the map so far, fixed] at 1/scale_k, predicts a
    displacement there, which is resized to full resolution and composed after the current map:
    u <- compose(u, u_k), so warp(moving, u) = warp(warp(moving, u_prev), u_k).
    """

    def __init__(self, ndim: int, scales: Sequence[int] = (2, 2, 1), enc: Sequence[int] = (16, 32, 64, 128),
                 dec: Sequence[int] = (128, 64, 32, 32), full: Sequence[int] = (16,)):
        super().__init__()
        self.ndim = ndim
        self.scales = tuple(int(s) for s in scales)
        self.nets = nn.ModuleList()
        self.heads = nn.ModuleList()
        for _ in self.scales:
            unet = VoxelMorphUNet(ndim, 2, enc=enc, dec=dec, half=(), full=full)
            self.nets.append(unet)
            self.heads.append(flow_head(ndim, unet.out_channels))

    def forward(self, x):
        _check_input(x, self.ndim)
        moving, fixed = x[:, :1], x[:, 1:]
        shape = x.shape[2:]
        u = torch.zeros((x.shape[0], self.ndim, *shape), dtype=x.dtype, device=x.device)
        for s, net, head in zip(self.scales, self.nets, self.heads):
            small = [max(2, n // s) for n in shape]
            warped = spatial.warp(moving, u)
            step = head(net(resize_image(torch.cat([warped, fixed], 1), small)))
            u = spatial.compose(u, spatial.resize_field(step, shape))
        return u


class _Up(nn.Module):
    """Upsample to the skip's size, concatenate, two conv-instance norm-LeakyReLU (TransMorph's decoder block)."""

    def __init__(self, ndim: int, cin: int, cskip: int, cout: int):
        super().__init__()
        from monai.networks.blocks import UnetBasicBlock

        self.block = UnetBasicBlock(ndim, cin + cskip, cout, kernel_size=3, stride=1, norm_name="instance",
                                    act_name=("leakyrelu", {"negative_slope": 0.2, "inplace": False}))

    def forward(self, x, skip):
        mode = "bilinear" if x.ndim == 4 else "trilinear"
        x = F.interpolate(x, size=skip.shape[2:], mode=mode, align_corners=False)
        return self.block(torch.cat([x, skip], 1))


@BACKBONES.register("transmorph")
class TransMorph(nn.Module):
    """TransMorph (Chen et al. 2022): Swin encoder on [moving, fixed] (patch 4, stages at 1/4..1/32),
    conv decoder with skips from every stage plus two convolutional skips from the input at 1/2 and
    full resolution, and a near-zero flow head. Defaults are the paper's TransMorph: embed 96, depths
    (2, 2, 4, 2), heads (4, 4, 8, 8), window 7 (2D) / (5, 6, 7) (3D)."""

    def __init__(self, ndim: int, embed_dim: int = 96, depths: Sequence[int] = (2, 2, 4, 2),
                 heads: Sequence[int] = (4, 4, 8, 8), window: Sequence[int] | int | None = None,
                 patch_size: int = 4, head_channels: int = 16, in_channels: int = 2):
        super().__init__()
        self.ndim, self.in_channels = ndim, in_channels
        if window is None:
            window = 7 if ndim == 2 else (5, 6, 7)
        self.encoder = SwinEncoder(ndim, in_channels, embed_dim, patch_size, depths, heads, window)
        ch = self.encoder.channels
        self.ups = nn.ModuleList()
        c = ch[-1]
        for skip_c in reversed(ch[:-1]):
            self.ups.append(_Up(ndim, c, skip_c, skip_c))
            c = skip_c
        half_c = max(1, embed_dim // 2)
        self.c_half = ConvAct(ndim, in_channels, half_c)
        self.c_full = ConvAct(ndim, in_channels, head_channels)
        self.up_half = _Up(ndim, c, half_c, head_channels)
        self.up_full = _Up(ndim, head_channels, head_channels, head_channels)
        self.flow = flow_head(ndim, head_channels)

    def forward(self, x):
        _check_input(x, self.ndim, self.in_channels)
        feats = self.encoder(x)
        h = feats[-1]
        for up, skip in zip(self.ups, reversed(feats[:-1])):
            h = up(h, skip)
        pool = F.avg_pool2d if self.ndim == 2 else F.avg_pool3d
        h = self.up_half(h, self.c_half(pool(x, 3, stride=2, padding=1)))
        h = self.up_full(h, self.c_full(x))
        return self.flow(h)


@BACKBONES.register("dgir_official")
def dgir_official(ndim: int, levels: int = 3, down: Sequence[int] | None = None,
                  up: Sequence[int] | None = None, last_step: bool = False) -> nn.Module:
    """The ICON chain of `levels` + 1 tallUNet2 steps (nets.tallunet): DGIR's official network
    (levels 3); GradICON / uniGradICON's (levels 2, last_step)."""
    return DGIRNet(ndim, levels, tuple(down or TALL_DOWN), tuple(up or TALL_UP), last_step)


@BACKBONES.register("transmatch")
def transmatch(ndim: int, **kwargs) -> nn.Module:
    """TransMatch (Chen et al. 2023), nets.transmatch: official parameter names; 2D and 3D."""
    return TransMatch(ndim, **kwargs)


@BACKBONES.register("corrmlp")
def corrmlp(ndim: int, **kwargs) -> nn.Module:
    """CorrMLP (Meng et al. 2024), nets.corrmlp: official parameter names; 3D (2D: its analogue)."""
    return CorrMLP(ndim, **kwargs)


@BACKBONES.register("uvit")
def uvit(ndim: int, size: str = "small", **kwargs) -> nn.Module:
    """U-ViT (Bao et al. 2023), nets.uvit: official parameter names; 2D and 3D (ours). ``size``:
    "small" (CPU tests) or "full" (U-ViT-S); kwargs override. Takes an optional time t."""
    return UViT(ndim, **{**UVIT_SIZES[size][ndim], "in_channels": 2, "out_channels": ndim, **kwargs})


@BACKBONES.register("swin_unet")
def swin_unet(ndim: int, size: str = "small", **kwargs) -> nn.Module:
    """Swin-Unet (Cao et al. 2022), nets.swin_unet: official parameter names; 2D and 3D (ours).
    ``size``: "small" (CPU tests) or "full" (the official Swin-T config); kwargs override."""
    return SwinUnet(ndim, **{**SWIN_UNET_SIZES[size][ndim], "in_channels": 2, "out_channels": ndim, **kwargs})

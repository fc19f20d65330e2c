"""CorrMLP (Meng, Feng, Bi & Kim, CVPR 2024): correlation-aware coarse-to-fine MLPs for registration.

A convolutional encoder, shared by the two images, gives features at 1, 1/2, 1/4, 1/8; the
decoder registers coarse to fine: at 1/8 a CMW-MLP block (local correlation of the two feature
maps, a convolution, multi-window gated MLPs with windows 3, 5, 7 mixed by learned weights, a
residual channel-attention block) and a head predict a field; at each finer level the field is
upsampled (x2 in size and value), warps the moving features, and a CMW-MLP block on
[fixed, warped moving] plus one fusing the upsampled coarser features predicts a residual field.

Own code, 2D and 3D (the official code, MungoMeng/Registration-CorrMLP, is 3D only and needs
einops; the 2D network is its dimensional analogue: 3^2 correlation offsets, square windows).
Module and parameter names follow the official ``CorrMLP/networks.py`` so that its state dicts
load with ``strict=True``; ``benchmarks/corrmlp_fidelity.py`` compares outputs. The official
defaults: ``enc_channels`` 8, ``dec_channels`` 16, gradient checkpointing on (memory only).
"""
from __future__ import annotations

import itertools
import math
import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import nn

from .. import spatial

# Training = the pairwise method (methods/pairwise.py, "voxelmorph" with backbone "corrmlp"): the
# official train.py minimises NCC(warp(m, u), f) + Grad-l2(u), as VoxelMorph. Its settings:
PAIRWISE_SETTINGS = {
    # official CorrMLP/train.py: NCC window 9 (squared cc), Grad-l2 weight 1, Adam lr 1e-4, batch 1,
    # 100 epochs x 1000 steps (the paper's text was not available to check against)
    "official": dict(backbone="corrmlp", similarity="lncc",
                     similarity_kwargs={"window": "box", "size": 9, "squared": True},
                     regulariser="diffusion", lambda_reg=1.0, lr=1e-4, batch_size=1, iterations=100_000),
    # M2M-Reg Sec. 3 (baseline without M2M-Reg): LNCC, diffusion lambda_reg 1000, lr 5e-5, batch 2,
    # 50,000 iterations (3D 128^3)
    "m2m_reg": dict(backbone="corrmlp", similarity="lncc", similarity_kwargs={},
                    regulariser="diffusion", lambda_reg=1000.0, lr=5e-5, batch_size=2, iterations=50_000),
}

WINDOWS = (3, 5, 7)          # the three window sizes of the official MultiWinMlpLayer


def _conv(ndim):
    return nn.Conv2d if ndim == 2 else nn.Conv3d


def _run(fn, *args, checkpoint: bool):
    """Gradient checkpointing where the official code uses it (training only; same values)."""
    if checkpoint and torch.is_grad_enabled() and any(a.requires_grad for a in args):
        return cp.checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)


class Conv_block(nn.Module):  # noqa: N801 - official name
    """conv-LeakyReLU(0.2)-InstanceNorm twice (the official order: activation before the norm)."""

    def __init__(self, ndim, cin, cout):
        super().__init__()
        conv, norm = _conv(ndim), (nn.InstanceNorm2d if ndim == 2 else nn.InstanceNorm3d)
        self.Conv_1, self.norm_1 = conv(cin, cout, 3, padding="same"), norm(cout)
        self.Conv_2, self.norm_2 = conv(cout, cout, 3, padding="same"), norm(cout)
        self.LeakyReLU = nn.LeakyReLU(0.2)

    def forward(self, x):
        x = self.norm_1(self.LeakyReLU(self.Conv_1(x)))
        return self.norm_2(self.LeakyReLU(self.Conv_2(x)))


class Conv_encoder(nn.Module):  # noqa: N801
    def __init__(self, ndim, cin, c, checkpoint):
        super().__init__()
        self.checkpoint = checkpoint
        for i in range(4):
            setattr(self, f"Convblock_{i + 1}", Conv_block(ndim, cin if i == 0 else c * 2 ** (i - 1), c * 2 ** i))
        self.downsample = (nn.AvgPool2d if ndim == 2 else nn.AvgPool3d)(2, stride=2)

    def forward(self, x):
        feats = []
        for i in range(4):
            x = _run(getattr(self, f"Convblock_{i + 1}"), x if i == 0 else self.downsample(x),
                     checkpoint=self.checkpoint)
            feats.append(x)
        return feats


class Correlation(nn.Module):
    """Channel-mean products of x1 with x2 shifted by every offset in {-d..d}^D (x2 zero-padded),
    offsets in row-major order: (2d+1)^D channels."""

    def __init__(self, ndim, max_disp=1):
        super().__init__()
        self.ndim, self.max_disp = ndim, max_disp

    def forward(self, x1, x2):
        d = self.max_disp
        x2 = F.pad(x2, [d, d] * self.ndim)
        size = x1.shape[2:]
        out = []
        for off in itertools.product(range(2 * d + 1), repeat=self.ndim):
            shifted = x2[(slice(None), slice(None)) + tuple(slice(o, o + n) for o, n in zip(off, size))]
            out.append((x1 * shifted).mean(1, keepdim=True))
        return torch.cat(out, 1)


class MLP(nn.Module):
    def __init__(self, cin, hidden, cout):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(cin, hidden), nn.GELU(), nn.Linear(hidden, cout)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class SpatialGatingUnit(nn.Module):
    """u * (Dense over the window positions of LayerNorm(v) + 1), (u, v) the two channel halves."""

    def __init__(self, c, n):
        super().__init__()
        self.Dense_0 = nn.Linear(n, n)
        self.LayerNorm = nn.LayerNorm(c // 2)

    def forward(self, x):
        u, v = x.split(x.shape[-1] // 2, -1)
        v = self.Dense_0(self.LayerNorm(v).transpose(-1, -2)).transpose(-1, -2)
        return u * (v + 1.0)


def split_windows(x, w):
    """(B, *S, C), S divisible by w -> (B, nW, prod(w), C), windows and positions in row-major order."""
    b, *s, c = x.shape
    nd = len(w)
    shape = [b]
    for n, k in zip(s, w):
        shape += [n // k, k]
    x = x.reshape(*shape, c).permute(0, *[1 + 2 * i for i in range(nd)], *[2 + 2 * i for i in range(nd)], 1 + 2 * nd)
    return x.reshape(b, math.prod(n // k for n, k in zip(s, w)), math.prod(w), c)


def merge_windows(x, w, s):
    b, c, nd = x.shape[0], x.shape[-1], len(w)
    grid = [n // k for n, k in zip(s, w)]
    x = x.reshape(b, *grid, *w, c)
    perm = [0]
    for i in range(nd):
        perm += [1 + i, 1 + nd + i]
    return x.permute(*perm, 1 + 2 * nd).reshape(b, *s, c)


class WinGmlpLayer(nn.Module):  # noqa: N801
    """Gated MLP inside non-overlapping windows of size k^D (the map zero-padded at the end)."""

    def __init__(self, ndim, k, c, factor=2):
        super().__init__()
        self.window = (k,) * ndim
        self.LayerNorm = nn.LayerNorm(c)
        self.in_project = nn.Linear(c, c * factor)
        self.gelu = nn.GELU()
        self.SpatialGatingUnit = SpatialGatingUnit(c * factor, k ** ndim)
        self.out_project = nn.Linear(c * factor // 2, c)

    def forward(self, x):
        size = x.shape[1:-1]
        pad = []
        for n, k in zip(reversed(size), reversed(self.window)):
            pad += [0, (-n) % k]
        x = F.pad(x, [0, 0] + pad)
        padded = x.shape[1:-1]
        x = split_windows(x, self.window)
        x = x + self.out_project(self.SpatialGatingUnit(self.gelu(self.in_project(self.LayerNorm(x)))))
        x = merge_windows(x, self.window, padded)
        return x[(slice(None),) + tuple(slice(0, n) for n in size)]


class MultiWinMlpLayer(nn.Module):  # noqa: N801
    def __init__(self, ndim, c):
        super().__init__()
        self.LayerNorm = nn.LayerNorm(c)
        for i, k in enumerate(WINDOWS):
            setattr(self, f"WinGmlpLayer_{i + 1}", WinGmlpLayer(ndim, k, c))
        self.reweight = MLP(c, c // 4, c * 3)
        self.out_project = nn.Linear(c, c)

    def forward(self, x_in):
        b, c = x_in.shape[0], x_in.shape[-1]
        x = self.LayerNorm(x_in)
        branches = [getattr(self, f"WinGmlpLayer_{i + 1}")(x) for i in range(len(WINDOWS))]
        a = sum(branches).flatten(1, -2).mean(1)                       # (B, C): global average
        a = self.reweight(a).reshape(b, c, 3).permute(2, 0, 1).softmax(0)
        a = a.view(3, b, *([1] * (x.ndim - 2)), c)
        x = sum(br * a[i] for i, br in enumerate(branches))
        return self.out_project(x) + x_in


class CALayer(nn.Module):
    def __init__(self, ndim, c, reduction=4):
        super().__init__()
        conv = _conv(ndim)
        self.Conv_0, self.relu = conv(c, c // reduction, 1), nn.ReLU()
        self.Conv_1, self.sigmoid = conv(c // reduction, c, 1), nn.Sigmoid()

    def forward(self, x_in):          # channel-last
        x = x_in.movedim(-1, 1).mean(tuple(range(2, x_in.ndim)), keepdim=True)
        w = self.sigmoid(self.Conv_1(self.relu(self.Conv_0(x))))
        return x_in * w.movedim(1, -1)


class RCAB(nn.Module):
    """Residual channel attention: LayerNorm, conv, LeakyReLU(0.2), conv, squeeze-excitation."""

    def __init__(self, ndim, c):
        super().__init__()
        conv = _conv(ndim)
        self.LayerNorm = nn.LayerNorm(c)
        self.conv1 = conv(c, c, 3, padding="same")
        self.leaky_relu = nn.LeakyReLU(0.2)
        self.conv2 = conv(c, c, 3, padding="same")
        self.channel_attention = CALayer(ndim, c)

    def forward(self, x):             # channel-last
        h = self.LayerNorm(x).movedim(-1, 1)
        h = self.conv2(self.leaky_relu(self.conv1(h))).movedim(1, -1)
        return self.channel_attention(h) + x


class CMWMLP_block(nn.Module):  # noqa: N801
    """Correlation-aware multi-window MLP block on a pair of feature maps (channel-first)."""

    def __init__(self, ndim, cin, c, checkpoint):
        super().__init__()
        self.checkpoint = checkpoint
        self.Corr = Correlation(ndim, 1)
        self.Conv = _conv(ndim)(2 * cin + 3 ** ndim, c, 3, padding="same")
        self.mlpLayer = MultiWinMlpLayer(ndim, c)
        self.channel_attention_block = RCAB(ndim, c)

    def forward(self, x1, x2):
        corr = _run(self.Corr, x1, x2, checkpoint=self.checkpoint)
        x = self.Conv(torch.cat([x1, corr, x2], 1))
        h = _run(self.mlpLayer, x.movedim(1, -1), checkpoint=self.checkpoint)
        h = _run(self.channel_attention_block, h, checkpoint=self.checkpoint)
        return h.movedim(-1, 1) + x


class PatchExpanding_block(nn.Module):  # noqa: N801
    def __init__(self, ndim, c):
        super().__init__()
        self.up_conv = (nn.ConvTranspose2d if ndim == 2 else nn.ConvTranspose3d)(c, c // 2, 2, stride=2)
        self.norm = nn.LayerNorm(c // 2)

    def forward(self, x):
        return self.norm(self.up_conv(x).movedim(1, -1)).movedim(-1, 1)


class RegHead_block(nn.Module):  # noqa: N801
    def __init__(self, ndim, c):
        super().__init__()
        self.reg_head = _conv(ndim)(c, ndim, 3, padding="same")
        nn.init.normal_(self.reg_head.weight, 0.0, 1e-5)          # official: N(0, 1e-5), bias 0
        nn.init.zeros_(self.reg_head.bias)

    def forward(self, x):
        return self.reg_head(x)


def upsample_flow(flow):
    """x2 in size (align_corners=True) and in value (the official ResizeTransformer_block)."""
    mode = "bilinear" if flow.ndim == 4 else "trilinear"
    return F.interpolate(2 * flow, scale_factor=2, mode=mode, align_corners=True)


class MLP_decoder(nn.Module):  # noqa: N801
    def __init__(self, ndim, cin, c, checkpoint):
        super().__init__()
        self.checkpoint = checkpoint
        # registered in the official order (state-dict order)
        for i in range(4):           # mlp_1k on (fixed, moving) features at level k
            setattr(self, f"mlp_1{i + 1}", CMWMLP_block(ndim, cin * 2 ** i, c * 2 ** i, checkpoint))
        for i in range(3):           # mlp_2k fuses level k with the upsampled coarser features
            setattr(self, f"mlp_2{i + 1}", CMWMLP_block(ndim, c * 2 ** i, c * 2 ** i, checkpoint))
        for i in range(3):
            setattr(self, f"upsample_{i + 1}", PatchExpanding_block(ndim, c * 2 ** (i + 1)))
        for i in range(4):
            setattr(self, f"reghead_{i + 1}", RegHead_block(ndim, c * 2 ** i))

    def forward(self, fix, mov):
        x = self.mlp_14(fix[3], mov[3])
        flow = _run(self.reghead_4, x, checkpoint=self.checkpoint)
        for k in (3, 2, 1):          # coarse to fine
            up = upsample_flow(flow)
            warped = spatial.warp(mov[k - 1], up, padding="zeros")     # the official SpatialTransformer_block
            h = getattr(self, f"mlp_1{k}")(fix[k - 1], warped)
            x = getattr(self, f"mlp_2{k}")(h, getattr(self, f"upsample_{k}")(x))
            flow = _run(getattr(self, f"reghead_{k}"), x, checkpoint=self.checkpoint) + up
        return flow


class CorrMLP(nn.Module):
    """forward(x (B, 2, *S) = [moving, fixed]) -> displacement (B, D, *S) in voxels (the official
    forward(fixed, moving) returns (warped, flow)). Sizes: edge-padded to a multiple of 8 (three
    halvings) and cropped back."""

    def __init__(self, ndim: int, enc_channels: int = 8, dec_channels: int = 16, checkpoint: bool = True,
                 in_channels: int = 1):
        super().__init__()
        self.ndim = ndim
        self.Encoder = Conv_encoder(ndim, in_channels, enc_channels, checkpoint)
        self.Decoder = MLP_decoder(ndim, enc_channels, dec_channels, checkpoint)

    def forward(self, x):
        if x.ndim != self.ndim + 2 or x.shape[1] != 2:
            raise ValueError(f"expected (B, 2, *S) with {self.ndim} spatial axes, got {tuple(x.shape)}")
        size = x.shape[2:]
        pad = []
        for n in reversed(size):
            pad += [0, (-n) % 8]
        if any(pad):
            x = F.pad(x, pad, mode="replicate")
        flow = self.flow(x[:, 1:], x[:, :1])
        return flow[(slice(None), slice(None)) + tuple(slice(0, n) for n in size)]

    def flow(self, fixed, moving):
        """The official forward's flow, argument order as there."""
        return self.Decoder(self.Encoder(fixed), self.Encoder(moving))

"""A compact Swin Transformer encoder (Liu et al. 2021), 2D and 3D, for TransMorph.

Own code: MONAI's SwinTransformer needs einops, which the pinned environment does not carry.
Tokens are kept channel-last (B, *S, C) inside the stages.
"""
from __future__ import annotations

import itertools
import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _pad_to(x: torch.Tensor, multiples: Sequence[int]) -> torch.Tensor:
    """Zero-pad channel-last x (B, *S, C) at the end of each spatial axis to a multiple."""
    ndim = len(multiples)
    pad = []
    for axis in reversed(range(ndim)):
        n = x.shape[1 + axis]
        pad += [0, (-n) % multiples[axis]]
    return F.pad(x, [0, 0] + pad) if any(pad) else x


def window_partition(x: torch.Tensor, w: Sequence[int]) -> torch.Tensor:
    """(B, *S, C) with S divisible by w -> (B * nW, prod(w), C)."""
    b, *s, c = x.shape
    ndim = len(w)
    shape = [b]
    for n, k in zip(s, w):
        shape += [n // k, k]
    x = x.view(*shape, c)
    # (B, n0, k0, n1, k1, ..., C) -> (B, n0, n1, ..., k0, k1, ..., C)
    perm = [0] + [1 + 2 * i for i in range(ndim)] + [2 + 2 * i for i in range(ndim)] + [1 + 2 * ndim]
    return x.permute(*perm).reshape(-1, math.prod(w), c)


def window_reverse(win: torch.Tensor, w: Sequence[int], s: Sequence[int], b: int) -> torch.Tensor:
    ndim = len(w)
    counts = [n // k for n, k in zip(s, w)]
    x = win.view(b, *counts, *w, -1)
    perm = [0]
    for i in range(ndim):
        perm += [1 + i, 1 + ndim + i]
    perm += [1 + 2 * ndim]
    return x.permute(*perm).reshape(b, *s, -1)


def relative_position_index(window: Sequence[int]) -> torch.Tensor:
    """(N, N) index into the (prod(2w - 1), heads) bias table, the official row-major layout (Swin,
    TransMatch, Swin-Unet), for any number of axes."""
    coords = torch.stack(torch.meshgrid(*[torch.arange(k) for k in window], indexing="ij")).flatten(1)
    rel = coords[:, :, None] - coords[:, None, :]  # (D, N, N)
    index = torch.zeros(rel.shape[1:], dtype=torch.long)
    for d, k in enumerate(window):
        index += (rel[d] + k - 1) * math.prod(2 * kk - 1 for kk in window[d + 1:])
    return index


def init_transformer(module: nn.Module) -> None:
    """The official ViT / Swin initialisation: linears truncated normal (std 0.02) with zero bias,
    LayerNorms unit weight and zero bias."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside a window, with a learned relative position bias."""

    def __init__(self, dim: int, window: Sequence[int], heads: int):
        super().__init__()
        self.window = tuple(window)
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.bias_table = nn.Parameter(torch.zeros(math.prod(2 * k - 1 for k in window), heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        self.register_buffer("bias_index", relative_position_index(window), persistent=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        bw, n, c = x.shape
        qkv = self.qkv(x).view(bw, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * self.scale) @ k.transpose(-2, -1)
        attn = attn + self.bias_table[self.bias_index].permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(bw // nw, nw, self.heads, n, n) + mask[None, :, None]
            attn = attn.view(bw, self.heads, n, n)
        out = attn.softmax(-1) @ v
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))


class SwinBlock(nn.Module):
    def __init__(self, dim: int, heads: int, window: Sequence[int], shift: bool, mlp_ratio: float = 4.0):
        super().__init__()
        self.window = tuple(window)
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, heads)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, *s, c = x.shape
        w = self.window
        # no shift along an axis that fits in one window; maps are zero-padded to whole windows and
        # the padding is masked out of the attention
        shifts = [k // 2 if (self.shift and n > k) else 0 for k, n in zip(w, s)]
        h = _pad_to(self.norm1(x), w)
        sp = tuple(h.shape[1:-1])
        axes = tuple(range(1, len(s) + 1))
        padded = sp != tuple(s)
        mask = None
        if any(shifts):
            h = torch.roll(h, [-t for t in shifts], dims=axes)
        if any(shifts) or padded:
            mask = self._mask(tuple(s), sp, w, shifts, x.device, x.dtype)
        out = window_reverse(self.attn(window_partition(h, w), mask), w, sp, b)
        if any(shifts):
            out = torch.roll(out, shifts, dims=axes)
        out = out[(slice(None),) + tuple(slice(0, n) for n in s)]
        x = x + out
        return x + self.mlp(self.norm2(x))

    @staticmethod
    def _mask(s, sp, w, shifts, device, dtype):
        """Additive mask (nW, N, N): tokens from different regions of the rolled map do not attend
        to each other, and no token attends to padding."""
        region = torch.zeros((1, *sp, 1), device=device)
        spans = []
        for n, k, t in zip(sp, w, shifts):
            spans.append([slice(0, n - k), slice(n - k, n - t), slice(n - t, n)] if t else [slice(0, n)])
        for rid, sl in enumerate(itertools.product(*spans)):
            region[(slice(None),) + sl] = rid
        valid = torch.zeros((1, *sp, 1), device=device)
        valid[(slice(None),) + tuple(slice(0, n) for n in s)] = 1.0
        if any(shifts):
            valid = torch.roll(valid, [-t for t in shifts], dims=tuple(range(1, len(s) + 1)))
        ids = window_partition(region, w).squeeze(-1)  # (nW, N)
        keep = window_partition(valid, w).squeeze(-1) > 0
        blocked = (ids[:, :, None] != ids[:, None, :]) | ~keep[:, None, :]
        return torch.zeros(blocked.shape, device=device, dtype=dtype).masked_fill(blocked, -100.0)


class PatchMerging(nn.Module):
    """Concatenate each 2^D neighbourhood, normalise, project to 2C: halves every axis."""

    def __init__(self, dim: int, ndim: int):
        super().__init__()
        self.ndim = ndim
        self.norm = nn.LayerNorm((2 ** ndim) * dim)
        self.reduce = nn.Linear((2 ** ndim) * dim, 2 * dim, bias=False)

    def forward(self, x):
        x = _pad_to(x, [2] * self.ndim)
        parts = []
        for off in itertools.product((0, 1), repeat=self.ndim):
            parts.append(x[(slice(None),) + tuple(slice(o, None, 2) for o in off)])
        return self.reduce(self.norm(torch.cat(parts, -1)))


class SwinEncoder(nn.Module):
    """Patch embedding + stages of Swin blocks, each followed by patch merging.

    forward(x (B, C, *S)) -> list of channel-first features, one per stage, each normalised and
    taken before the stage's merging (as TransMorph uses them): stage 1 at 1/p (E channels),
    stage 2 at 1/2p (2E), ..., stage L at 1/(p 2^(L-1)) (2^(L-1) E). Any input size works
    (inputs and odd maps are zero-padded; outputs keep the padded sizes).
    """

    def __init__(self, ndim: int, in_channels: int = 2, embed_dim: int = 96, patch_size: int = 4,
                 depths: Sequence[int] = (2, 2, 4, 2), heads: Sequence[int] = (4, 4, 8, 8),
                 window: Sequence[int] | int = 7, mlp_ratio: float = 4.0):
        super().__init__()
        if len(depths) != len(heads):
            raise ValueError("one head count per stage")
        window = [window] * ndim if isinstance(window, int) else list(window)
        self.ndim = ndim
        self.patch = patch_size
        conv = nn.Conv2d if ndim == 2 else nn.Conv3d
        self.embed = conv(in_channels, embed_dim, patch_size, stride=patch_size)
        self.embed_norm = nn.LayerNorm(embed_dim)
        self.stages = nn.ModuleList()
        self.merges = nn.ModuleList()
        self.out_norms = nn.ModuleList()
        self.channels = []
        dim = embed_dim
        for i, (depth, h) in enumerate(zip(depths, heads)):
            blocks = [SwinBlock(dim, h, window, shift=bool(j % 2), mlp_ratio=mlp_ratio) for j in range(depth)]
            self.stages.append(nn.Sequential(*blocks))
            self.channels.append(dim)
            self.out_norms.append(nn.LayerNorm(dim))
            last = i == len(depths) - 1
            self.merges.append(nn.Identity() if last else PatchMerging(dim, ndim))
            dim = dim if last else 2 * dim

    def forward(self, x):
        pad = []
        for n in reversed(x.shape[2:]):
            pad += [0, (-n) % self.patch]
        x = self.embed(F.pad(x, pad) if any(pad) else x)
        h = self.embed_norm(x.movedim(1, -1))
        outs = []
        for stage, norm, merge in zip(self.stages, self.out_norms, self.merges):
            h = stage(h)
            outs.append(norm(h).movedim(-1, 1))
            h = merge(h)
        return outs

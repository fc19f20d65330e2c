"""U-ViT (Bao et al., CVPR 2023, "All are Worth Words: A ViT Backbone for Diffusion Models").

A plain ViT whose tokens are the image patches plus one time token; the first half of the blocks
feed long skips (concatenate, then a linear layer) into the second half; a linear layer turns
each patch token back into a patch and a 3x3 convolution smooths the image.

Own code, 2D and 3D. The official code (baofff/U-ViT, ``libs/uvit.py``: ``UViT``) is 2D; the 3D
version is our generalisation: cubic patches, a Conv3d patch embedding and a 3D final conv.
Module and parameter names follow the official ones so that its state dicts load with
``strict=True`` (``benchmarks/uvit_fidelity.py`` compares outputs on identical weights).

Differences from the official module, none of which changes an output on its input size:
``in_channels`` and ``out_channels`` may differ (the official predicts ``in_chans`` channels);
any input size works: it is padded to whole patches (cropped back), and when the patch grid is
not the one of ``img_size`` the learned positional embedding of the patches is interpolated to
it; ``t=None`` means t = 0 (the time token is then a constant learned by the blocks);
``head_std`` initialises the last layer near zero (a registration backbone starts near the
identity map; ``None``: the official initialisation); no class conditioning (``num_classes``)
and no gradient checkpointing.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .adm import timestep_embedding      # the official's: [cos | sin], zero-padded to odd dims
from .swin import init_transformer

# size -> ndim -> settings. "full": U-ViT-S (the paper's CIFAR-10 / ImageNet 64 width, 13 blocks:
# the "13-layer UViT" of DiffuseReg's fusion ablation); patches of 4 (2D) / 8 (3D) keep the token
# count of registration images moderate (1024 / 4096 at img_size); "small": for CPU tests
_FULL = dict(embed_dim=512, depth=12, num_heads=8, mlp_ratio=4.0, qkv_bias=False, mlp_time_embed=False)
UVIT_SIZES = {
    "small": {2: dict(embed_dim=64, depth=4, num_heads=4, patch_size=4, img_size=64),
              3: dict(embed_dim=64, depth=4, num_heads=4, patch_size=4, img_size=32)},
    "full": {2: dict(_FULL, patch_size=4, img_size=128), 3: dict(_FULL, patch_size=8, img_size=128)},
}


def _tuple(v, ndim: int) -> tuple[int, ...]:
    return tuple(int(k) for k in v) if isinstance(v, Sequence) else (int(v),) * ndim


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """(B, C, *S) -> (B, L, p^D C), patches in raster order, channels fastest (the official order)."""
    b, c, *s = x.shape
    nd = len(s)
    x = x.reshape(b, c, *[k for n in s for k in (n // p, p)])
    # (B, C, g0, p0, g1, p1, ...) -> (B, g0, g1, ..., p0, p1, ..., C)
    x = x.permute(0, *range(2, 2 + 2 * nd, 2), *range(3, 3 + 2 * nd, 2), 1)
    return x.reshape(b, math.prod(n // p for n in s), -1)


def unpatchify(x: torch.Tensor, grid: Sequence[int], p: int) -> torch.Tensor:
    """(B, L, p^D C) -> (B, C, *grid * p): patchify's inverse."""
    b, nd = x.shape[0], len(grid)
    x = x.reshape(b, *grid, *[p] * nd, -1)
    perm = [0, 1 + 2 * nd] + [k for i in range(nd) for k in (1 + i, 1 + nd + i)]
    return x.permute(*perm).reshape(b, -1, *[n * p for n in grid])


class Mlp(nn.Module):
    """timm's Mlp (fc1, GELU, fc2), the official's; dropout 0 in U-ViT, so omitted."""

    def __init__(self, in_features: int, hidden_features: int):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, in_features)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = False, qk_scale: float | None = None):
        super().__init__()
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    """Pre-norm transformer block; with ``skip`` it first fuses a long skip: Linear([x, skip])."""

    def __init__(self, dim, num_heads, mlp_ratio=4.0, qkv_bias=False, qk_scale=None, skip=False):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads, qkv_bias, qk_scale)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.skip_linear = nn.Linear(2 * dim, dim) if skip else None

    def forward(self, x, skip=None):
        if self.skip_linear is not None:
            x = self.skip_linear(torch.cat([x, skip], -1))
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, ndim: int, patch_size: int, in_chans: int, embed_dim: int):
        super().__init__()
        conv = nn.Conv2d if ndim == 2 else nn.Conv3d
        self.proj = conv(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class UViT(nn.Module):
    """forward(x (B, in_channels, *S), t (B,) or None) -> (B, out_channels, *S).

    ``img_size`` sets the grid of the learned positional embedding (``img_size // patch_size``
    per axis); ``depth`` // 2 blocks in, one middle block, ``depth`` // 2 blocks out (with long
    skips when ``skip``); ``mlp_time_embed``: an MLP on the sinusoidal time embedding.
    """

    def __init__(self, ndim: int = 2, img_size: int | Sequence[int] = 64, patch_size: int = 4,
                 in_channels: int = 2, out_channels: int | None = None, embed_dim: int = 64, depth: int = 4,
                 num_heads: int = 4, mlp_ratio: float = 4.0, qkv_bias: bool = False,
                 qk_scale: float | None = None, mlp_time_embed: bool = False, conv: bool = True,
                 skip: bool = True, head_std: float | None = 1e-5):
        super().__init__()
        if ndim not in (2, 3):
            raise ValueError(f"ndim must be 2 or 3, got {ndim}")
        out_channels = ndim if out_channels is None else out_channels
        self.ndim, self.patch_size, self.embed_dim = ndim, patch_size, embed_dim
        self.in_channels, self.out_channels = in_channels, out_channels
        self.grid = tuple(n // patch_size for n in _tuple(img_size, ndim))
        self.patch_embed = PatchEmbed(ndim, patch_size, in_channels, embed_dim)
        self.time_embed = nn.Sequential(nn.Linear(embed_dim, 4 * embed_dim), nn.SiLU(),
                                        nn.Linear(4 * embed_dim, embed_dim)) if mlp_time_embed else nn.Identity()
        self.extras = 1                                    # the time token
        self.pos_embed = nn.Parameter(torch.zeros(1, self.extras + math.prod(self.grid), embed_dim))
        block = dict(dim=embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, qk_scale=qk_scale)
        self.in_blocks = nn.ModuleList([Block(**block) for _ in range(depth // 2)])
        self.mid_block = Block(**block)
        self.out_blocks = nn.ModuleList([Block(**block, skip=skip) for _ in range(depth // 2)])
        self.norm = nn.LayerNorm(embed_dim)
        self.decoder_pred = nn.Linear(embed_dim, patch_size ** ndim * out_channels)
        conv_nd = nn.Conv2d if ndim == 2 else nn.Conv3d
        self.final_layer = conv_nd(out_channels, out_channels, 3, padding=1) if conv else nn.Identity()
        self._init(head_std)

    def _init(self, head_std):
        """The official initialisation (truncated normal 0.02 for linears and the positional
        embedding); then the last layer ~N(0, head_std), bias 0, when head_std is set."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        init_transformer(self)
        if head_std is not None:
            last = self.final_layer if isinstance(self.final_layer, nn.Conv2d | nn.Conv3d) else self.decoder_pred
            nn.init.normal_(last.weight, 0.0, head_std)
            nn.init.zeros_(last.bias)

    def _pos_embed(self, grid: Sequence[int]) -> torch.Tensor:
        """The positional embedding for a patch grid: the learned one on its own grid, else its
        patch part resampled (bicubic in 2D, trilinear in 3D), as ViTs at a new resolution."""
        if tuple(grid) == self.grid:
            return self.pos_embed
        extra, patches = self.pos_embed[:, :self.extras], self.pos_embed[:, self.extras:]
        patches = patches.transpose(1, 2).reshape(1, self.embed_dim, *self.grid)
        mode = "bicubic" if self.ndim == 2 else "trilinear"
        patches = F.interpolate(patches, size=tuple(grid), mode=mode, align_corners=False)
        return torch.cat([extra, patches.flatten(2).transpose(1, 2)], 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        if x.ndim != self.ndim + 2 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected (B, {self.in_channels}, *S) with {self.ndim} spatial axes, "
                             f"got {tuple(x.shape)}")
        size = x.shape[2:]
        p = self.patch_size
        pad = [k for n in reversed(size) for k in (0, (-n) % p)]
        if any(pad):
            x = F.pad(x, pad, mode="replicate")
        grid = [n // p for n in x.shape[2:]]
        b = x.shape[0]
        t = torch.zeros(b, device=x.device) if t is None else torch.as_tensor(t, device=x.device).reshape(-1).expand(b)
        tokens = self.patch_embed(x)
        time_token = self.time_embed(timestep_embedding(t, self.embed_dim).to(tokens.dtype))
        h = torch.cat([time_token[:, None], tokens], 1) + self._pos_embed(grid)
        skips = []
        for blk in self.in_blocks:
            h = blk(h)
            skips.append(h)
        h = self.mid_block(h)
        for blk in self.out_blocks:
            h = blk(h, skips.pop())
        h = self.decoder_pred(self.norm(h))[:, self.extras:]
        out = self.final_layer(unpatchify(h, grid, p))
        return out[(slice(None), slice(None)) + tuple(slice(0, n) for n in size)]

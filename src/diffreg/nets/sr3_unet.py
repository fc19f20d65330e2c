"""The conditional DDPM U-Net of DiffuseMorph (the SR3-style network of its official code,
boahK/DiffuseMorph `diffusion_net_{2D,3D}/unet.py`), in 2D and 3D with the official parameter
names, so an official state dict loads with strict=True (benchmarks/diffusemorph.py,
tests/unit/test_diffusemorph.py).

Layout: a sinusoidal embedding of the integer timestep -> MLP; a stem convolution; per level
`res_blocks` residual blocks (GroupNorm, Swish, 3^d convolutions, the time embedding added after
the first) and a stride-2 convolution; a middle of two residual blocks, the first with
self-attention; a mirrored decoder with skip concatenations and nearest upsampling + convolution;
a last GroupNorm-Swish-convolution. Attention is used at a level whose running size (starting at
`image_size`, halved per level) is in `attn_res`, and always in the middle.

The two dimensionalities differ as the official code does: 2D uses GroupNorm(32) and softmax
attention over positions with one head scaled by 1/sqrt(channels); 3D uses GroupNorm(4) and a
4-head linear attention (softmax of the keys over positions, no scaling).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

# the official configurations (config/diffuseMorph_train_{2D,3D}.json)
OFFICIAL = {
    2: dict(in_channel=3, out_channel=1, inner_channel=64, channel_mults=(1, 2, 4, 4), attn_res=(8,),
            res_blocks=1, image_size=128),
    3: dict(in_channel=3, out_channel=1, inner_channel=8, channel_mults=(1, 2, 4, 4), attn_res=(10,),
            res_blocks=1, image_size=128),
}
GROUPS = {2: 32, 3: 4}
HEADS = {2: 1, 3: 4}


class TimeEmbedding(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        # a persistent buffer: the official state dict carries it
        self.register_buffer("inv_freq", torch.exp(torch.arange(0, dim, 2, dtype=torch.float32)
                                                   * (-math.log(10000) / dim)))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        x = torch.outer(t.reshape(-1).float(), self.inv_freq)
        return torch.cat([x.sin(), x.cos()], dim=-1).view(*t.shape, self.dim)


class Swish(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(x)


def _conv(ndim):
    return nn.Conv2d if ndim == 2 else nn.Conv3d


class Upsample(nn.Module):
    def __init__(self, ndim: int, dim: int):
        super().__init__()
        self.conv = _conv(ndim)(dim, dim, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class Downsample(nn.Module):
    def __init__(self, ndim: int, dim: int):
        super().__init__()
        self.conv = _conv(ndim)(dim, dim, 3, 2, 1)

    def forward(self, x):
        return self.conv(x)


class Block(nn.Module):
    def __init__(self, ndim: int, dim: int, dim_out: int, dropout: float = 0.0):
        super().__init__()
        self.block = nn.Sequential(nn.GroupNorm(GROUPS[ndim], dim), Swish(),
                                   nn.Dropout(dropout) if dropout else nn.Identity(),
                                   _conv(ndim)(dim, dim_out, 3, padding=1))

    def forward(self, x):
        return self.block(x)


class ResnetBlock(nn.Module):
    def __init__(self, ndim: int, dim: int, dim_out: int, time_dim: int | None, dropout: float = 0.0):
        super().__init__()
        self.mlp = nn.Sequential(Swish(), nn.Linear(time_dim, dim_out)) if time_dim else None
        self.block1 = Block(ndim, dim, dim_out)
        self.block2 = Block(ndim, dim_out, dim_out, dropout)
        self.res_conv = _conv(ndim)(dim, dim_out, 1) if dim != dim_out else nn.Identity()

    def forward(self, x, t):
        h = self.block1(x)
        if self.mlp is not None:
            h = h + self.mlp(t).view(*t.shape[:1], -1, *([1] * (x.ndim - 2)))
        return self.block2(h) + self.res_conv(x)


class SelfAttention(nn.Module):
    def __init__(self, ndim: int, channels: int):
        super().__init__()
        self.ndim, self.heads = ndim, HEADS[ndim]
        self.norm = nn.GroupNorm(GROUPS[ndim], channels)
        self.qkv = _conv(ndim)(channels, channels * 3, 1, bias=False)
        self.out = _conv(ndim)(channels, channels, 1)

    def forward(self, x):
        b, c, *size = x.shape
        qkv = self.qkv(self.norm(x))
        if self.ndim == 2:       # channels grouped (head, q/k/v, c): softmax attention over positions
            q, k, v = qkv.view(b, self.heads, 3 * c // self.heads, -1).chunk(3, dim=2)
            attn = torch.softmax(torch.einsum("bhcn,bhcm->bhnm", q, k) / math.sqrt(c), dim=-1)
            out = torch.einsum("bhnm,bhcm->bhcn", attn, v)
        else:                    # channels grouped (q/k/v, head, c): linear attention
            q, k, v = qkv.view(b, 3, self.heads, c // self.heads, -1).unbind(1)
            context = torch.einsum("bhdn,bhen->bhde", k.softmax(dim=-1), v)
            out = torch.einsum("bhde,bhdn->bhen", context, q)
        return self.out(out.reshape(b, c, *size)) + x


class ResnetBlocWithAttn(nn.Module):
    def __init__(self, ndim: int, dim: int, dim_out: int, time_dim: int | None, dropout: float = 0.0,
                 with_attn: bool = False):
        super().__init__()
        self.res_block = ResnetBlock(ndim, dim, dim_out, time_dim, dropout)
        self.attn = SelfAttention(ndim, dim_out) if with_attn else None

    def forward(self, x, t):
        x = self.res_block(x, t)
        return self.attn(x) if self.attn is not None else x


class SR3UNet(nn.Module):
    """epsilon-hat = net(concat(conditions, x_t), t) with t the integer timestep (module docstring)."""

    def __init__(self, ndim: int, in_channel: int = 3, out_channel: int = 1, inner_channel: int = 64,
                 channel_mults: Sequence[int] = (1, 2, 4, 4), attn_res: Sequence[int] = (8,),
                 res_blocks: int = 1, dropout: float = 0.0, image_size: int = 128, with_time_emb: bool = True):
        super().__init__()
        if ndim not in (2, 3):
            raise ValueError(f"SR3UNet is 2D or 3D, got ndim={ndim}")
        if inner_channel % GROUPS[ndim]:
            raise ValueError(f"inner_channel {inner_channel} must be a multiple of {GROUPS[ndim]} in {ndim}D (GroupNorm)")
        self.ndim = ndim
        self.levels = len(channel_mults)
        time_dim = inner_channel if with_time_emb else None
        self.time_mlp = nn.Sequential(TimeEmbedding(inner_channel), nn.Linear(inner_channel, inner_channel * 4),
                                      Swish(), nn.Linear(inner_channel * 4, inner_channel)) if with_time_emb else None
        pre, feats, res = inner_channel, [inner_channel], image_size
        downs: list[nn.Module] = [_conv(ndim)(in_channel, inner_channel, 3, padding=1)]
        for i, mult in enumerate(channel_mults):
            out = inner_channel * mult
            for _ in range(res_blocks):
                downs.append(ResnetBlocWithAttn(ndim, pre, out, time_dim, dropout, res in attn_res))
                feats.append(out)
                pre = out
            if i < len(channel_mults) - 1:
                downs.append(Downsample(ndim, pre))
                feats.append(pre)
                res //= 2
        self.downs = nn.ModuleList(downs)
        self.mid = nn.ModuleList([ResnetBlocWithAttn(ndim, pre, pre, time_dim, dropout, True),
                                  ResnetBlocWithAttn(ndim, pre, pre, time_dim, dropout, False)])
        ups: list[nn.Module] = []
        for i in reversed(range(len(channel_mults))):
            out = inner_channel * channel_mults[i]
            for _ in range(res_blocks + 1):
                ups.append(ResnetBlocWithAttn(ndim, pre + feats.pop(), out, time_dim, dropout, res in attn_res))
                pre = out
            if i > 0:
                ups.append(Upsample(ndim, pre))
                res *= 2
        self.ups = nn.ModuleList(ups)
        self.final_conv = Block(ndim, pre, out_channel)

    @property
    def multiple(self) -> int:
        """Spatial sizes must be multiples of this (one halving per level but the last)."""
        return 2 ** (self.levels - 1)

    def encode(self, x: torch.Tensor, t: torch.Tensor):
        """Encoder and middle blocks: (features, skips of every encoder layer, time embedding)."""
        temb = self.time_mlp(t) if self.time_mlp is not None else None
        skips = []
        for layer in self.downs:
            x = layer(x, temb) if isinstance(layer, ResnetBlocWithAttn) else layer(x)
            skips.append(x)
        for layer in self.mid:
            x = layer(x, temb)
        return x, skips, temb

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if any(n % self.multiple for n in x.shape[2:]):
            raise ValueError(f"SR3UNet input {tuple(x.shape[2:])}: every side must be a multiple of {self.multiple}")
        x, skips, temb = self.encode(x, t)
        for layer in self.ups:
            x = layer(torch.cat([x, skips.pop()], 1), temb) if isinstance(layer, ResnetBlocWithAttn) else layer(x)
        return self.final_conv(x)

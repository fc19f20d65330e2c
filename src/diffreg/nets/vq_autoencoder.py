"""The VQ autoencoder (VQ-GAN first stage) of latent diffusion, as LDM-Morph configures it.

Our own implementation of the architecture of the CompVis ``ldm`` / ``taming`` ``VQModel``
(``Encoder``, ``Decoder``, ``quant_conv``, ``post_quant_conv``, ``quantize``); parameter names
follow theirs, so an official checkpoint's ``first_stage_model.*`` weights load with
``strict=True``. Written here rather than taken from diffusers, whose ``VQModel`` names its
parameters differently. LDM-Morph's configuration (``configs/autoencoder/*_vq16.yaml``): one
channel in and out, ch 128, ch_mult (1, 2, 4) (f = 4: 128 -> 32), 2 res blocks, attention at
resolution 32, z_channels 1 and embed_dim 1, a codebook of 16384 entries.

`encode(x)` is the code's ``VQModelInterface.encode``: encoder then 1x1 ``quant_conv``, *not*
quantised; that is the latent LDM-Morph's U-Net and its latent loss see.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class VQConfig:
    in_channels: int = 1
    out_ch: int = 1
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 4)
    num_res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = (32,)
    resolution: int = 128            # only places the attention (curr_res in attn_resolutions)
    z_channels: int = 1
    embed_dim: int = 1
    n_embed: int = 16384
    num_groups: int = 32

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ch_mult"], d["attn_resolutions"] = list(self.ch_mult), list(self.attn_resolutions)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "VQConfig":
        d = dict(d)
        d["ch_mult"], d["attn_resolutions"] = tuple(d["ch_mult"]), tuple(d["attn_resolutions"])
        return cls(**d)

    @property
    def factor(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)


# LDM-Morph configs/autoencoder/autoencoder_{camus,acdc}_vq16.yaml
OFFICIAL_VQ = VQConfig()


def _norm(c: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(groups, c, eps=1e-6)


class ResnetBlock(nn.Module):
    """norm-swish-conv twice, 1x1 ``nin_shortcut`` when the width changes (no time embedding)."""

    def __init__(self, cin: int, cout: int, groups: int):
        super().__init__()
        self.norm1, self.conv1 = _norm(cin, groups), nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2, self.conv2 = _norm(cout, groups), nn.Conv2d(cout, cout, 3, padding=1)
        if cin != cout:
            self.nin_shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x) + h


class AttnBlock(nn.Module):
    """Single-head spatial self-attention with 1x1 conv projections."""

    def __init__(self, c: int, groups: int):
        super().__init__()
        self.norm = _norm(c, groups)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(c, c, 1) for _ in range(4))

    def forward(self, x):
        h = self.norm(x)
        b, c, hh, ww = h.shape
        q, k, v = (m(h).reshape(b, c, hh * ww) for m in (self.q, self.k, self.v))
        w = torch.softmax(q.transpose(1, 2) @ k * c ** -0.5, dim=-1)     # (b, query, key)
        return x + self.proj_out((v @ w.transpose(1, 2)).reshape(b, c, hh, ww))


class Downsample(nn.Module):
    """Stride-2 3x3 conv after zero padding right and bottom by one (the code's asymmetric pad)."""

    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def _level(blocks, attn, resample_name=None, resample=None) -> nn.Module:
    m = nn.Module()
    m.block, m.attn = nn.ModuleList(blocks), nn.ModuleList(attn)
    if resample is not None:
        m.add_module(resample_name, resample)
    return m


class Encoder(nn.Module):
    def __init__(self, c: VQConfig):
        super().__init__()
        g = c.num_groups
        self.conv_in = nn.Conv2d(c.in_channels, c.ch, 3, padding=1)
        self.down = nn.ModuleList()
        res, cin = c.resolution, c.ch
        for i, mult in enumerate(c.ch_mult):
            blocks, attn = [], []
            for _ in range(c.num_res_blocks):
                blocks.append(ResnetBlock(cin, c.ch * mult, g))
                cin = c.ch * mult
                if res in c.attn_resolutions:
                    attn.append(AttnBlock(cin, g))
            last = i == len(c.ch_mult) - 1
            self.down.append(_level(blocks, attn, "downsample", None if last else Downsample(cin)))
            res = res if last else res // 2
        self.mid = nn.Module()
        self.mid.block_1, self.mid.attn_1, self.mid.block_2 = ResnetBlock(cin, cin, g), AttnBlock(cin, g), ResnetBlock(cin, cin, g)
        self.norm_out = _norm(cin, g)
        self.conv_out = nn.Conv2d(cin, c.z_channels, 3, padding=1)      # double_z: false

    def forward(self, x):
        h = self.conv_in(x)
        for level in self.down:
            for i, block in enumerate(level.block):
                h = block(h)
                if len(level.attn):
                    h = level.attn[i](h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, c: VQConfig):
        super().__init__()
        g = c.num_groups
        cin = c.ch * c.ch_mult[-1]
        res = c.resolution // c.factor
        self.conv_in = nn.Conv2d(c.z_channels, cin, 3, padding=1)
        self.mid = nn.Module()
        self.mid.block_1, self.mid.attn_1, self.mid.block_2 = ResnetBlock(cin, cin, g), AttnBlock(cin, g), ResnetBlock(cin, cin, g)
        levels = []
        for i in reversed(range(len(c.ch_mult))):
            blocks, attn = [], []
            for _ in range(c.num_res_blocks + 1):
                blocks.append(ResnetBlock(cin, c.ch * c.ch_mult[i], g))
                cin = c.ch * c.ch_mult[i]
                if res in c.attn_resolutions:
                    attn.append(AttnBlock(cin, g))
            levels.insert(0, _level(blocks, attn, "upsample", Upsample(cin) if i else None))
            res = res * 2 if i else res
        self.up = nn.ModuleList(levels)
        self.norm_out = _norm(cin, g)
        self.conv_out = nn.Conv2d(cin, c.out_ch, 3, padding=1)

    def forward(self, z):
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(self.conv_in(z))))
        for level in reversed(self.up):
            for i, block in enumerate(level.block):
                h = block(h)
                if len(level.attn):
                    h = level.attn[i](h)
            if hasattr(level, "upsample"):
                h = level.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class VectorQuantizer(nn.Module):
    """Nearest codebook entry with a straight-through gradient; loss = ||sg(z_q) - z||^2 * beta +
    ||z_q - sg(z)||^2 (taming's VectorQuantizer2 with legacy=True, beta 0.25)."""

    def __init__(self, n_embed: int, dim: int, beta: float = 0.25):
        super().__init__()
        self.beta = beta
        self.embedding = nn.Embedding(n_embed, dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / n_embed, 1.0 / n_embed)

    def forward(self, z):
        zf = z.movedim(1, -1).reshape(-1, z.shape[1])
        idx = torch.cdist(zf, self.embedding.weight).argmin(1)
        zq = self.embedding(idx).view(*z.shape[:1], *z.shape[2:], z.shape[1]).movedim(-1, 1)
        loss = self.beta * F.mse_loss(zq.detach(), z) + F.mse_loss(zq, z.detach())
        return z + (zq - z).detach(), loss, idx


class VQAutoencoder(nn.Module):
    def __init__(self, config: VQConfig = OFFICIAL_VQ):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.quantize = VectorQuantizer(config.n_embed, config.embed_dim)
        self.quant_conv = nn.Conv2d(config.z_channels, config.embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(config.embed_dim, config.z_channels, 1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The latent before quantisation (the code's VQModelInterface.encode)."""
        return self.quant_conv(self.encoder(x))

    def decode(self, h: torch.Tensor, quantize: bool = True) -> torch.Tensor:
        quant = self.quantize(h)[0] if quantize else h
        return self.decoder(self.post_quant_conv(quant))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstruction and codebook loss (training)."""
        quant, q_loss, _ = self.quantize(self.encode(x))
        return self.decoder(self.post_quant_conv(quant)), q_loss

"""LDM-Morph's registration network (Wu & Gong): a dual-stream encoder, LGCA, a conv decoder.

- lower stream: a Swin encoder on the concatenated pair (M, F) (patch 4, embed 64, depths
  2,2,4,2, heads 4,4,8,8, window 7), features at 1/4 .. 1/32 of the image;
- upper stream: one 3x3 conv + PReLU per level on the latent diffusion features of the pair
  (`features.latent_diffusion`; 256, 384, 640, 896 channels at 1/4 .. 1/32 of a 128^2 image),
  to the Swin stream's widths;
- LGCA (latent and global feature cross-attention): at each level one Swin block pair whose
  attention takes its queries from the other stream, applied both ways with the same weights
  (official ``LDMMorph.py:74-81``; `nets.transmatch.LWCA`: queries from its second argument);
- decoder: bicubic x2 upsampling and conv-norm-LeakyReLU blocks with the two LGCA outputs of
  each level as skips, a conv of the avg-pooled pair at 1/2, a last bicubic x2, then a 3x3 conv
  (weights N(0, 1e-5)) and Softsign: a displacement in the normalised units of
  ``grid_sample(align_corners=True)``, channel 0 along H, channel 1 along W.

Module and parameter names follow the official ``TransModels/LDMMorph.py`` so that its state
dicts load with ``strict=True`` (``LDMMorph(256, 384, 640, 896)``: 31.5 M parameters, 316 keys,
including the modules its forward never uses: each LWSA's ``c1``/``c2``, ``norm1..3`` of each
LGCA, ``conv3`` / ``conv1`` of decoder blocks that take two / one skips).
`benchmarks/ldm_morph_fidelity.py` compares outputs with the official code.

Ablations of the paper's Table 3 (the paper does not say how its network looks without a
module; ours): ``lgca=False`` passes each level's two streams to the decoder unchanged (Swin
features where LGCA's first output went, the feature stream's where its second went; their sum
at 1/32, which has one decoder input); ``features=False`` drops the feature stream and LGCA: the
decoder takes the Swin features as its only skip (its one-skip convs, ``conv3``).
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Sequence

import torch
from torch import nn

from .transmatch import LWCA, LWSA, ConvNormAct, DecoderBlock

# official TransModels/LDMMorph.py + utils/configs.py at 128 x 128
OFFICIAL = dict(feature_channels=(256, 384, 640, 896), embed_dim=64, depths=(2, 2, 4, 2), num_heads=(4, 4, 8, 8),
                window_size=7, cross_depth=2, cross_heads=4, cross_window=7)


class FeatureConv(nn.Sequential):
    """Official ``LDMMorph.encoder``: 3x3 conv with bias, PReLU (one slope)."""

    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1), nn.PReLU())


class LDMMorphNet(nn.Module):
    """forward(moving, fixed, features) -> displacement (B, 2, H, W) in normalised units.

    `features`: four maps (B, feature_channels[i], H / 2^(i+2), W / 2^(i+2)) of the pair
    (ignored with ``features=False``). H and W: multiples of patch_size * 8 (32).
    """

    def __init__(self, feature_channels: Sequence[int] = OFFICIAL["feature_channels"], embed_dim: int = 64,
                 depths: Sequence[int] = (2, 2, 4, 2), num_heads: Sequence[int] = (4, 4, 8, 8),
                 window_size: int = 7, cross_depth: int = 2, cross_heads: int = 4, cross_window: int = 7,
                 mlp_ratio: float = 4.0, qkv_bias: bool = False, drop_path_rate: float = 0.3,
                 reg_head_chan: int = 16, patch_size: int = 4, lgca: bool = True, features: bool = True):
        super().__init__()
        if len(depths) != 4 or len(num_heads) != 4 or len(feature_channels) != 4:
            raise ValueError("LDM-Morph has four levels (1/4 .. 1/32): four depths, head counts and feature widths")
        if lgca and not features:
            raise ValueError("LGCA attends between the feature stream and the Swin stream: it needs features=True")
        self.use_lgca, self.use_features = lgca, features
        self.multiple = patch_size * 2 ** (len(depths) - 1)
        e = embed_dim
        swin = SimpleNamespace(embed_dim=e, depths=tuple(depths), num_heads=tuple(num_heads),
                               window_size=(window_size,) * 2, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                               drop_path_rate=drop_path_rate, reg_head_chan=reg_head_chan, patch_size=patch_size,
                               window_merge="swin", in_chans=2)
        # the official cross config: its own depths/heads, of which LWCA uses the first stage only
        cross = SimpleNamespace(**{**swin.__dict__, "depths": (cross_depth,) + tuple(depths[1:]),
                                   "num_heads": (cross_heads,) + tuple(num_heads[1:]),
                                   "window_size": (cross_window,) * 2, "in_chans": 1})
        self.avg_pool = nn.AvgPool2d(3, stride=2, padding=1)
        self.ec1 = ConvNormAct(2, 2, e // 2)
        self.lwsa = LWSA(2, swin)
        if features:
            for k, cin in enumerate(feature_channels):
                self.add_module(f"c{k + 1}", FeatureConv(cin, e * 2 ** k))
        if lgca:
            for k in range(4):
                self.add_module(f"lwca{k + 1}", LWCA(cross, e * 2 ** k, 4))
        for i, (cin, cout) in enumerate([(8 * e, 4 * e), (4 * e, 2 * e), (2 * e, e), (e, e // 2)]):
            self.add_module(f"up{i}", DecoderBlock(2, cin, cout, cout, mode="bicubic"))
        self.up = nn.Upsample(scale_factor=2, mode="bicubic", align_corners=False)
        head = nn.Conv2d(e // 2, 2, 3, padding=1)
        nn.init.normal_(head.weight, 0.0, 1e-5)                 # official RegistrationHead: N(0, 1e-5), bias 0
        nn.init.zeros_(head.bias)
        self.reg_head = nn.Sequential(head, nn.Softsign())

    def forward(self, moving: torch.Tensor, fixed: torch.Tensor,
                features: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        if moving.ndim != 4 or moving.shape != fixed.shape or moving.shape[1] != 1:
            raise ValueError(f"expected moving and fixed (B, 1, H, W) of one shape, got {tuple(moving.shape)}, "
                             f"{tuple(fixed.shape)}")
        if any(n % self.multiple for n in moving.shape[2:]):
            raise ValueError(f"LDM-Morph needs H and W multiples of {self.multiple}, got {tuple(moving.shape[2:])}")
        pair = torch.cat([moving, fixed], 1)
        f4 = self.ec1(self.avg_pool(pair))
        swin = self.lwsa(pair)
        if not self.use_features:
            h = self.up0(swin[3], swin[2])
            h = self.up1(h, swin[1])
            h = self.up2(h, swin[0])
        else:
            if features is None or len(features) != 4:
                raise ValueError("LDM-Morph takes four latent feature maps of the pair")
            cnn = [getattr(self, f"c{k + 1}")(f) for k, f in enumerate(features)]
            if self.use_lgca:
                lw = [self.lwca1, self.lwca2, self.lwca3, self.lwca4]
                first = [m(s, c) for m, s, c in zip(lw, swin, cnn)]           # queries from the feature stream
                second = [m(c, s) for m, s, c in zip(lw[:3], swin[:3], cnn[:3])]   # queries from the Swin stream
            else:
                first = swin[:3] + [swin[3] + cnn[3]]
                second = cnn[:3]
            h = self.up0(first[3], first[2], second[2])
            h = self.up1(h, first[1], second[1])
            h = self.up2(h, first[0], second[0])
        h = self.up3(h, f4)
        return self.reg_head(self.up(h))

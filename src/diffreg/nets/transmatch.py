"""TransMatch (Chen, Zheng & Gee, IEEE TMI 2023): a dual-stream Swin network for pairwise registration.

Each image has its own Swin encoder stream (LWSA: local-window self-attention) giving features at
1/4 .. 1/32; at every level a cross-attention block (LWCA) matches the moving features to the
fixed ones and vice versa (queries from the other image, keys and values from its own); a
convolutional decoder with skips from both matched streams and a conv skip of the input pair at
1/2 predicts the displacement (upsampled to full size, near-zero head).

Own code, 2D and 3D (the official code, tzayuan/TransMatch_TMI, is 3D only and needs timm);
module and parameter names follow the official ``Models/TransMatch.py`` so that its state dicts
load with ``strict=True``, including the modules its forward never uses (``c2``, ``up4``, each
LWSA's ``c1``/``c2``, ``norm1..3`` of each LWCA, ``conv3`` / ``conv1`` of decoder blocks that take
one / two skips): they get no gradient. ``benchmarks/transmatch_fidelity.py`` compares outputs.

``window_merge``: after window attention, tokens go back to their places (``"swin"``, default: the
Swin Transformer the paper builds on); the official 3D code reverses the window partition with the
partition's own permutation (``"official"``): in 3D that moves tokens to other positions within
the map wherever a map holds more than one window (in 2D the two are the same).

``fixed_stream``: the paper's fixed image goes through its own stream (``"fixed_lwsa"``, default:
"each image is fed into a separate stream branch"); the official forward encodes both images
with ``moving_lwsa`` (``"moving_lwsa"``; ``fixed_lwsa`` is built but unused).
"""
from __future__ import annotations

import itertools
import math
from types import SimpleNamespace
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .swin import relative_position_index, window_partition, window_reverse

FIXED_STREAMS = ("fixed_lwsa", "moving_lwsa")
WINDOW_MERGES = ("swin", "official")

# official utils/configs_TransMatch.get_TransMatch_LPBA40_config (3D, LPBA40 160x192x160)
OFFICIAL_3D = dict(embed_dim=96, depths=(2, 2, 4, 2), num_heads=(4, 4, 8, 8), window_size=(5, 6, 5),
                   mlp_ratio=4.0, qkv_bias=False, drop_path_rate=0.3, reg_head_chan=16, patch_size=4)


# Training = the pairwise method (methods/pairwise.py, "voxelmorph" with backbone "transmatch"): the
# official Train.py minimises sim(warp(m, u), f) + alpha Grad-l2(u), as VoxelMorph. Its settings:
PAIRWISE_SETTINGS = {
    # official utils/config.py + Train.py (the paper's text was not available to check against):
    # NCC window 9 (VoxelMorph's squared cc), alpha 4, Adam lr 4e-4 (amsgrad=True, not available in
    # our Trainer), batch 1; every atlas-subject pair is trained both ways, one Adam step each
    "official": dict(backbone="transmatch", similarity="lncc",
                     similarity_kwargs={"window": "box", "size": 9, "squared": True},
                     regulariser="diffusion", lambda_reg=4.0, lr=4e-4, batch_size=1),
    # LDM-Morph Table 1 (Sec. 4.4): 2D, MSE similarity, "all other configurations as their default
    # settings" (alpha 4 above; the official config's comment recommends 0.01 for MSE)
    "ldm_morph": dict(backbone="transmatch", similarity="mse", similarity_kwargs={},
                      regulariser="diffusion", lambda_reg=4.0, lr=4e-4, batch_size=1),
}


def _conv(ndim):
    return nn.Conv2d if ndim == 2 else nn.Conv3d


class ConvNormAct(nn.Sequential):
    """Official Conv3dReLU with use_batchnorm=False: bias-free conv, InstanceNorm, LeakyReLU(0.01)."""

    def __init__(self, ndim, cin, cout, kernel=3, padding=1):
        norm = nn.InstanceNorm2d if ndim == 2 else nn.InstanceNorm3d
        super().__init__(_conv(ndim)(cin, cout, kernel, padding=padding, bias=False), norm(cout), nn.LeakyReLU())


class DropPath(nn.Module):
    """Stochastic depth per sample (the official code takes timm's); identity in eval mode."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class WindowAttention(nn.Module):
    """Window attention with relative position bias. forward(x, y): self-attention when y is None;
    else LWCA's cross-attention, queries from y, keys and values from x (one shared qkv)."""

    def __init__(self, dim, window, heads, qkv_bias):
        super().__init__()
        self.window, self.num_heads = tuple(window), heads
        self.scale = (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros(math.prod(2 * k - 1 for k in window), heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", relative_position_index(window))   # in official state dicts
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def _split(self, t):
        b, n, c = t.shape
        return self.qkv(t).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)

    def forward(self, x, y=None, mask=None):
        b, n, c = x.shape
        qkv = self._split(x)
        q = qkv[0] if y is None else self._split(y)[0]
        attn = (q * self.scale) @ qkv[1].transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(n, n, -1)
        attn = attn + bias.permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = (attn.view(b // nw, nw, self.num_heads, n, n) + mask[None, :, None]).view(b, self.num_heads, n, n)
        out = (attn.softmax(-1) @ qkv[2]).transpose(1, 2).reshape(b, n, c)
        return self.proj(out)


def official_window_reverse(win: torch.Tensor, w: Sequence[int], s: Sequence[int], b: int) -> torch.Tensor:
    """The official 3D window_reverse: (B nW, N, C) viewed as (B, n0.., k0.., C) and permuted with the
    partition's permutation (B, n0, k0, n1, k1, ..) order -> (B, *S, C); the inverse only in 2D."""
    nd = len(w)
    x = win.reshape(b, *[n // k for n, k in zip(s, w)], *w, win.shape[-1])
    perm = [0] + [1 + 2 * i for i in range(nd)] + [2 + 2 * i for i in range(nd)] + [1 + 2 * nd]
    return x.permute(*perm).reshape(b, *s, -1)


def shift_mask(padded: Sequence[int], window: Sequence[int], shift: Sequence[int], device) -> torch.Tensor:
    """The official additive mask (nW, N, N) of shifted windows: 3 regions per axis, -100 across regions.
    Padding tokens are not masked (as in the official code)."""
    region = torch.zeros((1, *padded, 1), device=device)
    spans = [(slice(0, -k), slice(-k, -s), slice(-s, None)) for k, s in zip(window, shift)]
    for rid, sl in enumerate(itertools.product(*spans)):
        region[(slice(None),) + sl] = rid
    ids = window_partition(region, window).squeeze(-1)
    diff = ids[:, None, :] - ids[:, :, None]
    return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)


class SwinBlock(nn.Module):
    """Official SwinTransformerBlock (LWSA) / its cross variant (LWCA, forward with y)."""

    def __init__(self, dim, heads, window, shifted, mlp_ratio, qkv_bias, drop_path, window_merge="swin"):
        super().__init__()
        self.window = tuple(window)
        self.reverse = official_window_reverse if window_merge == "official" else window_reverse
        self.shift = tuple(k // 2 for k in window) if shifted else (0,) * len(window)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, heads, qkv_bias)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def _windows(self, t, shape):
        b, c = t.shape[0], t.shape[-1]
        t = t.view(b, *shape, c)
        pad = []
        for n, k in zip(reversed(shape), reversed(self.window)):
            pad += [0, (-n) % k]
        t = F.pad(t, [0, 0] + pad)            # zeros after norm1, not masked (official)
        padded = t.shape[1:-1]
        if min(self.shift) > 0:
            t = torch.roll(t, [-s for s in self.shift], dims=tuple(range(1, len(shape) + 1)))
        return window_partition(t, self.window), tuple(padded)

    def forward(self, x, shape, y=None):
        b, L, c = x.shape
        win, padded = self._windows(self.norm1(x), shape)
        ywin = None if y is None else self._windows(self.norm1(y), shape)[0]
        mask = shift_mask(padded, self.window, self.shift, x.device).to(x.dtype) if min(self.shift) > 0 else None
        out = self.reverse(self.attn(win, ywin, mask), self.window, padded, b)
        if min(self.shift) > 0:
            out = torch.roll(out, list(self.shift), dims=tuple(range(1, len(shape) + 1)))
        out = out[(slice(None),) + tuple(slice(0, n) for n in shape)].reshape(b, L, c)
        x = x + self.drop_path(out)
        return x + self.drop_path(self.mlp(self.norm2(x)))


# the order in which the official PatchMerging concatenates the 2^D neighbours (x0, x1, ...)
_MERGE_ORDER = {2: [(0, 0), (1, 0), (0, 1), (1, 1)],
                3: [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (0, 1, 1), (1, 0, 1), (1, 1, 1)]}


class PatchMerging(nn.Module):
    """2^D neighbours concatenated, LayerNorm, Linear to 2C (the official 8C -> (8 // pat_merg_rf 4) C in 3D)."""

    def __init__(self, dim, ndim):
        super().__init__()
        self.ndim = ndim
        self.reduction = nn.Linear(2 ** ndim * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(2 ** ndim * dim)

    def forward(self, x, shape):
        if any(n % 2 for n in shape):
            raise ValueError(f"TransMatch patch merging needs even sizes, got {tuple(shape)}")
        x = x.view(x.shape[0], *shape, x.shape[-1])
        parts = [x[(slice(None),) + tuple(slice(o, None, 2) for o in off)] for off in _MERGE_ORDER[self.ndim]]
        x = torch.cat(parts, -1)
        return self.reduction(self.norm(x.reshape(x.shape[0], -1, x.shape[-1])))


class BasicLayer(nn.Module):
    def __init__(self, dim, depth, heads, cfg, drop_paths, merge_ndim=None):
        super().__init__()
        self.blocks = nn.ModuleList(SwinBlock(dim, heads, cfg.window_size, i % 2 == 1, cfg.mlp_ratio, cfg.qkv_bias,
                                              drop_paths[i], cfg.window_merge) for i in range(depth))
        if merge_ndim:
            self.downsample = PatchMerging(dim, merge_ndim)

    def forward(self, x, shape, y=None):
        for blk in self.blocks:
            x = blk(x, shape, y)
        return x


class PatchEmbed(nn.Module):
    def __init__(self, ndim, patch, cin, dim):
        super().__init__()
        self.proj = _conv(ndim)(cin, dim, patch, stride=patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        return self.norm(self.proj(x).movedim(1, -1))


def _drop_paths(rate, depths):
    return torch.linspace(0, rate, sum(depths), device="cpu").tolist()    # cpu: also under a meta device


class SwinStream(nn.Module):
    """The official basic_LWSA.SwinTransformer: patch embedding, stages with merging, norm<i> per output."""

    def __init__(self, ndim, cfg):
        super().__init__()
        self.patch_embed = PatchEmbed(ndim, cfg.patch_size, getattr(cfg, "in_chans", 1), cfg.embed_dim)
        dpr = _drop_paths(cfg.drop_path_rate, cfg.depths)
        self.layers = nn.ModuleList()
        n = len(cfg.depths)
        for i, (depth, heads) in enumerate(zip(cfg.depths, cfg.num_heads)):
            dim = cfg.embed_dim * 2 ** i
            self.layers.append(BasicLayer(dim, depth, heads, cfg, dpr[sum(cfg.depths[:i]):sum(cfg.depths[:i + 1])],
                                          ndim if i < n - 1 else None))
            self.add_module(f"norm{i}", nn.LayerNorm(dim))

    def forward(self, x):
        h = self.patch_embed(x)
        shape = list(h.shape[1:-1])
        h = h.reshape(h.shape[0], -1, h.shape[-1])
        outs = []
        for i, layer in enumerate(self.layers):
            h = layer(h, shape)
            outs.append(getattr(self, f"norm{i}")(h).view(h.shape[0], *shape, -1).movedim(-1, 1))
            if hasattr(layer, "downsample"):
                h = layer.downsample(h, shape)
                shape = [s // 2 for s in shape]
        return outs


class LWSA(nn.Module):
    def __init__(self, ndim, cfg):
        super().__init__()
        self.transformer = SwinStream(ndim, cfg)
        cin = getattr(cfg, "in_chans", 1)                       # LDM-Morph: one stream on the pair (2)
        self.c1 = ConvNormAct(ndim, cin, cfg.embed_dim // 2)    # unused by the official forward
        self.c2 = ConvNormAct(ndim, cin, cfg.reg_head_chan)     # unused by the official forward

    def forward(self, x):
        return self.transformer(x)


class CrossStream(nn.Module):
    """The official basic_LWCA.SwinTransformer: one stage (depths[0] blocks, num_heads[0]) at width
    ``dim``, then norm0 (norm1..3 exist, unused)."""

    def __init__(self, cfg, dim, n_norms):
        super().__init__()
        dpr = _drop_paths(cfg.drop_path_rate, cfg.depths)[:cfg.depths[0]]
        self.layers = nn.ModuleList([BasicLayer(dim, cfg.depths[0], cfg.num_heads[0], cfg, dpr)])
        for i in range(n_norms):
            self.add_module(f"norm{i}", nn.LayerNorm(dim))

    def forward(self, x, y):
        shape = list(x.shape[2:])
        b, c = x.shape[:2]
        t = self.layers[0](x.flatten(2).transpose(1, 2), shape, y.flatten(2).transpose(1, 2))
        return self.norm0(t).view(b, *shape, c).movedim(-1, 1)


class LWCA(nn.Module):
    def __init__(self, cfg, dim, n_norms):
        super().__init__()
        self.transformer = CrossStream(cfg, dim, n_norms)

    def forward(self, x, y):
        return self.transformer(x, y)


class DecoderBlock(nn.Module):
    """Upsample x2, concatenate one or two skips, two conv-norm-act (conv1 with two skips, conv3 with one).
    `mode`: the upsampling (default (tri)linear; LDM-Morph's decoder: bicubic)."""

    def __init__(self, ndim, cin, cout, skip, mode=None):
        super().__init__()
        self.conv1 = ConvNormAct(ndim, cin + 2 * skip, cout)
        self.conv2 = ConvNormAct(ndim, cout, cout)
        self.conv3 = ConvNormAct(ndim, cin + skip, cout)
        mode = mode or ("bilinear" if ndim == 2 else "trilinear")
        self.up = nn.Upsample(scale_factor=2, mode=mode, align_corners=False)

    def forward(self, x, skip, skip2=None):
        x = torch.cat([self.up(x), skip] + ([skip2] if skip2 is not None else []), 1)
        return self.conv2(self.conv1(x) if skip2 is not None else self.conv3(x))


class TransMatch(nn.Module):
    """forward(x (B, 2, *S) = [moving, fixed]) -> displacement (B, D, *S) in voxels.

    Sizes: the input is edge-padded to a multiple of patch_size * 2^(stages-1) (32 by default;
    the official code needs it) and the field cropped back.
    """

    def __init__(self, ndim: int, embed_dim: int = 96, depths: Sequence[int] = (2, 2, 4, 2),
                 num_heads: Sequence[int] = (4, 4, 8, 8), window_size: Sequence[int] | int | None = None,
                 mlp_ratio: float = 4.0, qkv_bias: bool = False, drop_path_rate: float = 0.3,
                 reg_head_chan: int = 16, patch_size: int = 4, fixed_stream: str = "fixed_lwsa",
                 window_merge: str = "swin"):
        super().__init__()
        if fixed_stream not in FIXED_STREAMS:
            raise ValueError(f"TransMatch fixed_stream must be one of {FIXED_STREAMS}, got {fixed_stream!r}")
        if window_merge not in WINDOW_MERGES:
            raise ValueError(f"TransMatch window_merge must be one of {WINDOW_MERGES}, got {window_merge!r}")
        if len(depths) != 4 or len(num_heads) != 4:
            raise ValueError("TransMatch has four levels (1/4 .. 1/32): four depths and four head counts")
        if window_size is None:
            # 3D: the official LPBA40 window (= the 1/32 map of 160x192x160); 2D: ours, the 1/32 map
            # of LDM-Morph's 128x128 inputs (its 2D reimplementation is not published)
            window_size = OFFICIAL_3D["window_size"] if ndim == 3 else 4
        window = (window_size,) * ndim if isinstance(window_size, int) else tuple(window_size)
        if len(window) != ndim:
            raise ValueError(f"window_size {window} does not have {ndim} axes")
        self.ndim, self.fixed_stream = ndim, fixed_stream
        self.multiple = patch_size * 2 ** (len(depths) - 1)
        cfg = SimpleNamespace(embed_dim=embed_dim, depths=tuple(depths), num_heads=tuple(num_heads),
                              window_size=window, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                              drop_path_rate=drop_path_rate, reg_head_chan=reg_head_chan, patch_size=patch_size,
                              window_merge=window_merge)
        e = embed_dim
        pool = nn.AvgPool2d if ndim == 2 else nn.AvgPool3d
        self.avg_pool = pool(3, stride=2, padding=1)
        self.c1 = ConvNormAct(ndim, 2, e // 2)
        self.c2 = ConvNormAct(ndim, 2, reg_head_chan)           # unused by the official forward
        self.moving_lwsa = LWSA(ndim, cfg)
        self.fixed_lwsa = LWSA(ndim, cfg)
        n_norms = 4                                              # official out_indices (0, 1, 2, 3)
        for k in range(4):
            self.add_module(f"lwca{k + 1}", LWCA(cfg, e * 2 ** k, n_norms))
        self.up0 = DecoderBlock(ndim, 8 * e, 4 * e, 4 * e)
        self.up1 = DecoderBlock(ndim, 4 * e, 2 * e, 2 * e)
        self.up2 = DecoderBlock(ndim, 2 * e, e, e)
        self.up3 = DecoderBlock(ndim, e, e // 2, e // 2)
        self.up4 = DecoderBlock(ndim, e // 2, reg_head_chan, reg_head_chan)   # unused by the official forward
        self.up = nn.Upsample(scale_factor=2, mode="bilinear" if ndim == 2 else "trilinear", align_corners=False)
        head = _conv(ndim)(e // 2, ndim, 3, padding=1)
        nn.init.normal_(head.weight, 0.0, 1e-5)                  # official RegistrationHead: N(0, 1e-5), bias 0
        nn.init.zeros_(head.bias)
        self.reg_head = nn.Sequential(head)

    def forward(self, x):
        if x.ndim != self.ndim + 2 or x.shape[1] != 2:
            raise ValueError(f"expected (B, 2, *S) with {self.ndim} spatial axes, got {tuple(x.shape)}")
        size = x.shape[2:]
        pad = []
        for n in reversed(size):
            pad += [0, (-n) % self.multiple]
        if any(pad):
            x = F.pad(x, pad, mode="replicate")
        return self.flow(x[:, :1], x[:, 1:])[(slice(None), slice(None)) + tuple(slice(0, n) for n in size)]

    def flow(self, moving, fixed):
        """The official forward(moving_Input, fixed_Input), sizes a multiple of 32."""
        f4 = self.c1(self.avg_pool(torch.cat([moving, fixed], 1)))
        mov = self.moving_lwsa(moving)
        fix = (self.fixed_lwsa if self.fixed_stream == "fixed_lwsa" else self.moving_lwsa)(fixed)
        lwca = [self.lwca1, self.lwca2, self.lwca3, self.lwca4]
        mov_x = [lw(m, f) for lw, m, f in zip(lwca, mov, fix)]
        fix_x = [lw(f, m) for lw, m, f in zip(lwca[:3], mov[:3], fix[:3])]   # the 1/32 one is never used
        h = self.up0(mov_x[3], mov_x[2], fix_x[2])
        h = self.up1(h, mov_x[1], fix_x[1])
        h = self.up2(h, mov_x[0], fix_x[0])
        h = self.up3(h, f4)
        return self.reg_head(self.up(h))

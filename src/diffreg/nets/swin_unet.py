"""Swin-Unet (Cao et al., ECCV-W 2022, "Swin-Unet: Unet-like Pure Transformer for Medical Image
Segmentation").

A U-Net made only of Swin Transformer blocks: patch embedding, stages of (shifted-)window
attention with patch merging down, a bottleneck, stages with patch expanding up and linear skip
fusion (concatenate, Linear 2C -> C), and a final 4x patch expansion + 1x1 conv to the outputs.

Own code, 2D and 3D. The official code (HuCaoFighting/Swin-Unet,
``networks/swin_transformer_unet_skip_expand_decoder_sys.py``: ``SwinTransformerSys``) is 2D; the
3D version is our generalisation: cubic patches and windows, patch merging of the 2^3
neighbourhood (axis 0 fastest, as the official 2D order), patch expanding to 2^3 sub-voxels of
C/2 channels (Linear C -> 4C) and a final expansion to patch_size^3 sub-voxels of C channels.
Module, parameter and buffer names follow the official ones so that its state dicts load with
``strict=True`` (``benchmarks/swin_unet_fidelity.py`` compares outputs on identical weights).

As the official, ``img_size`` fixes each stage's window: a stage whose smallest axis is no
larger than ``window_size`` uses one window of that size and no shift (this sets parameter
shapes), and in 2D the shifted blocks keep their attention mask for that size as the buffer
``attn_mask`` (3D masks, nW x N x N with N = w^3, are large: computed in forward). Beyond the
official: any input size works (padded to a multiple of patch_size * 2^(stages-1), maps padded to
whole windows with the padding masked out, the output cropped back; masks for other sizes are
computed on the fly); ``in_channels`` / ``out_channels``
(the official ``in_chans`` / ``num_classes``); ``head_std`` initialises the 1x1 output conv near
zero (a registration backbone starts near the identity map; ``None``: PyTorch's default, as the
official); ``time_embed``: an optional additive time embedding (sinusoid -> MLP, added to the patch
tokens; its last layer starts at zero) so the network can serve as a denoiser; off by default, as
the official has none. No stochastic depth (DropPath has no parameters and is the identity in eval
mode), no absolute position embedding (``ape``, off in the official configs), no checkpointing.
"""
from __future__ import annotations

import itertools
import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .adm import timestep_embedding
from .swin import SwinBlock, _pad_to, init_transformer, relative_position_index, window_partition, window_reverse
from .uvit import Mlp

# size -> ndim -> settings. "full" 2D: the official configs/swin_tiny_patch4_window7_224_lite.yaml
# (Swin-T widths, 224x224 Synapse slices); 3D: the same widths with 4^3 windows on a 128^3 grid
SWIN_UNET_SIZES = {
    "small": {2: dict(embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=4, patch_size=2,
                      img_size=64),
              3: dict(embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=4, patch_size=2,
                      img_size=32)},
    "full": {2: dict(embed_dim=96, depths=(2, 2, 2, 2), num_heads=(3, 6, 12, 24), window_size=7, patch_size=4,
                     img_size=224, mlp_ratio=4.0, qkv_bias=True),
             3: dict(embed_dim=96, depths=(2, 2, 2, 2), num_heads=(3, 6, 12, 24), window_size=4, patch_size=4,
                     img_size=128, mlp_ratio=4.0, qkv_bias=True)},
}


shifted_window_mask = SwinBlock._mask   # (nW, N, N) additive mask: regions of the rolled map, padding


class WindowAttention(nn.Module):
    def __init__(self, dim, window_size: Sequence[int], num_heads, qkv_bias=True, qk_scale=None):
        super().__init__()
        self.window_size = tuple(window_size)
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros(math.prod(2 * k - 1 for k in window_size), num_heads))
        self.register_buffer("relative_position_index", relative_position_index(window_size))
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x, mask=None):
        bw, n, c = x.shape
        q, k, v = self.qkv(x).view(bw, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(n, n, -1)
        attn = attn + bias.permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = (attn.view(bw // nw, nw, self.num_heads, n, n) + mask[None, :, None]).view(bw, -1, n, n)
        return self.proj((attn.softmax(-1) @ v).transpose(1, 2).reshape(bw, n, c))


class SwinTransformerBlock(nn.Module):
    """(B, *S, C) -> (B, *S, C). ``input_resolution``: the map size at ``img_size``."""

    def __init__(self, dim, input_resolution: Sequence[int], num_heads, window_size=7, shift_size=0,
                 mlp_ratio=4.0, qkv_bias=True, qk_scale=None):
        super().__init__()
        if min(input_resolution) <= window_size:      # the official rule: one window, no shift
            window_size, shift_size = min(input_resolution), 0
        self.window = (window_size,) * len(input_resolution)
        self.shift_size = shift_size
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, self.window, num_heads, qkv_bias, qk_scale)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.resolution = tuple(input_resolution)
        # the official keeps the mask of its one map size as a buffer (2D); 3D masks are large
        # (nW x N x N for N = w^3), so there they are computed in forward
        keep = shift_size and len(input_resolution) == 2
        self.register_buffer("attn_mask", self._mask(self.resolution, torch.device("cpu"), torch.float32)
                             if keep else None)

    def _shifts(self, size):
        return [self.shift_size if n > k else 0 for n, k in zip(size, self.window)]

    def _mask(self, size, device, dtype):
        shifts = self._shifts(size)
        padded = [n + (-n) % k for n, k in zip(size, self.window)]
        if not any(shifts) and padded == list(size):
            return None
        return shifted_window_mask(tuple(size), tuple(padded), self.window, shifts, device, dtype)

    def forward(self, x):
        b, *s, c = x.shape
        shifts = self._shifts(s)
        axes = tuple(range(1, len(s) + 1))
        stored = self.attn_mask is not None and tuple(s) == self.resolution
        mask = self.attn_mask if stored else self._mask(s, x.device, x.dtype)
        h = _pad_to(self.norm1(x), self.window)
        if any(shifts):
            h = torch.roll(h, [-t for t in shifts], dims=axes)
        sp = h.shape[1:-1]
        h = window_reverse(self.attn(window_partition(h, self.window), mask), self.window, sp, b)
        if any(shifts):
            h = torch.roll(h, shifts, dims=axes)
        x = x + h[(slice(None),) + tuple(slice(0, n) for n in s)]
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """The 2^D neighbourhood concatenated (axis 0 fastest: the official 2D order), normalised,
    projected to 2C: halves every axis."""

    def __init__(self, dim, ndim):
        super().__init__()
        self.ndim = ndim
        self.reduction = nn.Linear(2 ** ndim * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(2 ** ndim * dim)

    def forward(self, x):
        parts = [x[(slice(None),) + tuple(slice(o, None, 2) for o in reversed(off))]
                 for off in itertools.product((0, 1), repeat=self.ndim)]
        return self.reduction(self.norm(torch.cat(parts, -1)))


def _expand(x: torch.Tensor, scale: int) -> torch.Tensor:
    """(B, *S, scale^D C) -> (B, *S * scale, C): channel groups to sub-voxels, axis 0's outermost."""
    b, *s, c = x.shape
    nd = len(s)
    x = x.reshape(b, *s, *[scale] * nd, c // scale ** nd)
    perm = [0] + [k for i in range(nd) for k in (1 + i, 1 + nd + i)] + [1 + 2 * nd]
    return x.permute(*perm).reshape(b, *[n * scale for n in s], -1)


class PatchExpand(nn.Module):
    """Linear C -> 2^D C/2, then each voxel becomes 2^D voxels of C/2 channels: doubles every axis."""

    def __init__(self, dim, ndim):
        super().__init__()
        self.expand = nn.Linear(dim, 2 ** ndim * dim // 2, bias=False)
        self.norm = nn.LayerNorm(dim // 2)

    def forward(self, x):
        return self.norm(_expand(self.expand(x), 2))


class FinalPatchExpand_X4(nn.Module):  # noqa: N801 (the official name)
    """Linear C -> p^D C, each token back to p^D voxels of C channels (p = patch size, 4 officially)."""

    def __init__(self, dim, ndim, dim_scale=4):
        super().__init__()
        self.dim_scale = dim_scale
        self.expand = nn.Linear(dim, dim_scale ** ndim * dim, bias=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        return self.norm(_expand(self.expand(x), self.dim_scale))


class BasicLayer(nn.Module):
    """Swin blocks (every other one shifted by half a window), then ``downsample`` or ``upsample``."""

    def __init__(self, dim, input_resolution, depth, num_heads, window_size, mlp_ratio=4.0, qkv_bias=True,
                 qk_scale=None, downsample=False, upsample=False):
        super().__init__()
        self.blocks = nn.ModuleList([
            SwinTransformerBlock(dim, input_resolution, num_heads, window_size,
                                 0 if i % 2 == 0 else window_size // 2, mlp_ratio, qkv_bias, qk_scale)
            for i in range(depth)])
        nd = len(input_resolution)
        if downsample:
            self.downsample = PatchMerging(dim, nd)
        if upsample:
            self.upsample = PatchExpand(dim, nd)

    def forward(self, x):
        for blk in self.blocks:
            x = blk(x)
        for name in ("downsample", "upsample"):
            if hasattr(self, name):
                x = getattr(self, name)(x)
        return x


class PatchEmbed(nn.Module):
    def __init__(self, ndim, patch_size, in_chans, embed_dim, patch_norm=True):
        super().__init__()
        self.proj = (nn.Conv2d if ndim == 2 else nn.Conv3d)(in_chans, embed_dim, patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim) if patch_norm else None

    def forward(self, x):
        x = self.proj(x).movedim(1, -1)                # channel-last (B, *S, C)
        return self.norm(x) if self.norm is not None else x


class SwinUnet(nn.Module):
    """forward(x (B, in_channels, *S), t (B,) or None) -> (B, out_channels, *S)."""

    def __init__(self, ndim: int = 2, img_size: int | Sequence[int] = 64, patch_size: int = 2,
                 in_channels: int = 2, out_channels: int | None = None, embed_dim: int = 16,
                 depths: Sequence[int] = (2, 2, 2, 2), num_heads: Sequence[int] = (1, 2, 4, 8), window_size: int = 4,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, qk_scale: float | None = None,
                 patch_norm: bool = True, time_embed: bool = False, head_std: float | None = 1e-5):
        super().__init__()
        if ndim not in (2, 3):
            raise ValueError(f"ndim must be 2 or 3, got {ndim}")
        if len(depths) != len(num_heads):
            raise ValueError("one head count per stage")
        out_channels = ndim if out_channels is None else out_channels
        self.ndim, self.patch_size, self.in_channels = ndim, patch_size, in_channels
        self.embed_dim, self.num_layers = embed_dim, len(depths)
        size = tuple(int(k) for k in img_size) if isinstance(img_size, Sequence) else (int(img_size),) * ndim
        res = [n // patch_size for n in size]
        self.patch_embed = PatchEmbed(ndim, patch_size, in_channels, embed_dim, patch_norm)
        self.time_embed = nn.Sequential(nn.Linear(embed_dim, 4 * embed_dim), nn.SiLU(),
                                        nn.Linear(4 * embed_dim, embed_dim)) if time_embed else None
        common = dict(window_size=window_size, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, qk_scale=qk_scale)
        L = self.num_layers
        at = lambda i: [n // 2 ** i for n in res]   # noqa: E731 (stage i's map at img_size)
        self.layers = nn.ModuleList([
            BasicLayer(embed_dim * 2 ** i, at(i), depths[i], num_heads[i], downsample=i < L - 1, **common)
            for i in range(L)])
        self.layers_up = nn.ModuleList()
        self.concat_back_dim = nn.ModuleList()
        for j in range(L):                               # decoder step j works at stage i = L-1-j
            i = L - 1 - j
            dim = embed_dim * 2 ** i
            self.concat_back_dim.append(nn.Linear(2 * dim, dim) if j > 0 else nn.Identity())
            self.layers_up.append(PatchExpand(dim, ndim) if j == 0 else
                                  BasicLayer(dim, at(i), depths[i], num_heads[i], upsample=j < L - 1, **common))
        self.norm = nn.LayerNorm(embed_dim * 2 ** (L - 1))
        self.norm_up = nn.LayerNorm(embed_dim)
        self.up = FinalPatchExpand_X4(embed_dim, ndim, patch_size)
        self.output = (nn.Conv2d if ndim == 2 else nn.Conv3d)(embed_dim, out_channels, 1, bias=False)
        self._init(head_std)

    def _init(self, head_std):
        """The official initialisation (truncated normal 0.02 linears, unit LayerNorms); the time
        MLP's last layer at zero (a new network starts as the unconditioned one); the output conv
        ~N(0, head_std) when head_std is set."""
        init_transformer(self)
        if self.time_embed is not None:
            nn.init.zeros_(self.time_embed[-1].weight)
        if head_std is not None:
            nn.init.normal_(self.output.weight, 0.0, head_std)

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        if x.ndim != self.ndim + 2 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected (B, {self.in_channels}, *S) with {self.ndim} spatial axes, "
                             f"got {tuple(x.shape)}")
        size = x.shape[2:]
        m = self.patch_size * 2 ** (self.num_layers - 1)     # every merge halves an even map
        pad = [k for n in reversed(size) for k in (0, (-n) % m)]
        if any(pad):
            x = F.pad(x, pad, mode="replicate")
        h = self.patch_embed(x)
        if self.time_embed is not None:
            b = x.shape[0]
            t = torch.zeros(b, device=x.device) if t is None else \
                torch.as_tensor(t, device=x.device).reshape(-1).expand(b)
            h = h + self.time_embed(timestep_embedding(t, self.embed_dim).to(h.dtype)).view(b, *[1] * self.ndim, -1)
        elif t is not None:
            raise ValueError("this SwinUnet has no time input (build it with time_embed=True)")
        skips = []
        for layer in self.layers:                         # encoder, bottleneck
            skips.append(h)
            h = layer(h)
        h = self.norm(h)
        for j, (layer, fuse) in enumerate(zip(self.layers_up, self.concat_back_dim)):
            if j > 0:
                h = fuse(torch.cat([h, skips[self.num_layers - 1 - j]], -1))
            h = layer(h)
        h = self.up(self.norm_up(h)).movedim(-1, 1)
        return self.output(h)[(slice(None), slice(None)) + tuple(slice(0, n) for n in size)]

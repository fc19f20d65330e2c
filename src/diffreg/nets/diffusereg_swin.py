"""DiffuseReg's conditional SwinUNETR denoiser (Zhuo & Shen, MICCAI 2024; official
KUJOYUTA/DiffuseReg `model/diffusion_3D/swin_unetR.py`, a modified MONAI SwinUNETR).

Input (B, 5, D, H, W) = [moving, fixed, noisy field x_t (3)], time t (B,) -> predicted noise (B, 3, ...).

- One Swin encoder (`swinViT_cond`, shared) embeds M and F separately; every block records its
  windows (after norm1 and the cyclic shift), so each backbone block sees the M and F tokens of
  the very window it attends in.
- The backbone Swin (`swinViT`, on the field) attends in each window over
  [time token, M tokens, F tokens, field tokens] (the official order; the paper writes t, F, M)
  and keeps only the field tokens. The relative position bias and, in shifted blocks, the shift
  mask are tiled 3 x 3 over the image and field tokens; the time token row and column get
  neither (it attends to, and is attended by, every token).
- Time enters the CNN ResBlocks additively after the first convolution (`time_mlp`).

Module and parameter names are the official ones: its state dicts load with `strict=True`
(`benchmarks/diffusereg_fidelity.py`). MONAI's blocks are used where the official code uses
them (PatchEmbed, MLPBlock, PatchMerging's parameters, UnetOutBlock, UnetResBlock, WindowAttention's
parameters, the shift mask). Differences from the official module, none of which changes its
output where it runs: batch > 1 works (the official repeats the time token per window over the
whole batch, which breaks the token count for B > 1; here each window gets its own sample's
token); any size works (the input is zero-padded at the end of each axis to a multiple of 32 and
at least 16 x window, the official's constraint, and one axis at least 64 so that the 1/32 bottleneck has more than one
voxel for its instance norms; the output is cropped back); no einops.
Options for DiffuseReg's Table 2: `cond_mask=False` drops the tiled shift mask from the
conditional attention (row 3, "conditional mask"), `time_resblocks=False` builds the ResBlocks
without time (row 4), `fusion="concat"` fuses at the input through a 13-layer U-ViT (row 5).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from monai.networks.blocks import MLPBlock, PatchEmbed, UnetOutBlock
from monai.networks.blocks.dynunet_block import UnetResBlock, get_conv_layer
from monai.networks.layers import DropPath
from monai.networks.nets.swin_unetr import (PatchMerging, WindowAttention, compute_mask, get_window_size,
                                            window_partition, window_reverse)
from torch import nn

from .adm import timestep_embedding      # [cos | sin], the official `timestep_embedding`
from .uvit import Block

# the official configuration (config/train_3D.json)
OFFICIAL = dict(feature_size=120, depths=(2, 2, 2, 2), num_heads=(3, 6, 12, 24), window_size=(2, 4, 4))
# CPU tests and the pipeline's short profiles: feature 12 and windows of 2 (inputs padded to 32^3
# rather than the official layout's 32 x 64 x 64 minimum)
SMALL = dict(OFFICIAL, feature_size=12, window_size=(2, 2, 2))
SIZES = {"official": OFFICIAL, "small": SMALL}


class TimeResBlock(UnetResBlock):
    """MONAI's UnetResBlock with the official time injection: out + Linear(SiLU(t)) after the
    first conv, norm and activation (`_monai.py:204`); without `time_dim` it is MONAI's block."""

    def __init__(self, spatial_dims, in_channels, out_channels, kernel_size, stride, norm_name,
                 time_dim: int | None = None):
        super().__init__(spatial_dims, in_channels, out_channels, kernel_size=kernel_size, stride=stride,
                         norm_name=norm_name)
        self.time_dim = time_dim
        if time_dim is not None:
            self.time_mlp = nn.Sequential(nn.SiLU(), nn.Linear(time_dim, out_channels))

    def forward(self, inp, time=None):
        out = self.lrelu(self.norm1(self.conv1(inp)))
        if self.time_dim is not None:
            emb = self.time_mlp(time)
            out = out + emb.view(*emb.shape, *([1] * (inp.dim() - 2)))
        out = self.norm2(self.conv2(out))
        residual = inp
        if hasattr(self, "conv3"):
            residual = self.conv3(residual)
        if hasattr(self, "norm3"):
            residual = self.norm3(residual)
        return self.lrelu(out + residual)


class TimeUnetrBasicBlock(nn.Module):
    """UNETR encoder block (`layer` = a TimeResBlock)."""

    def __init__(self, spatial_dims, in_channels, out_channels, norm_name, time_dim):
        super().__init__()
        self.layer = TimeResBlock(spatial_dims, in_channels, out_channels, 3, 1, norm_name, time_dim)

    def forward(self, inp, time=None):
        return self.layer(inp, time)


class TimeUnetrUpBlock(nn.Module):
    """UNETR decoder block: transposed conv x2, concatenate the skip, a TimeResBlock."""

    def __init__(self, spatial_dims, in_channels, out_channels, norm_name, time_dim):
        super().__init__()
        self.transp_conv = get_conv_layer(spatial_dims, in_channels, out_channels, kernel_size=2, stride=2,
                                          conv_only=True, is_transposed=True)
        self.conv_block = TimeResBlock(spatial_dims, 2 * out_channels, out_channels, 3, 1, norm_name, time_dim)

    def forward(self, inp, skip, time=None):
        return self.conv_block(torch.cat((self.transp_conv(inp), skip), dim=1), time)


class OfficialPatchMerging(PatchMerging):
    """Patch merging as in the official copy (MONAI <= 1.3's v0.9 `PatchMerging`): of the eight
    2 x 2 x 2 neighbours it concatenates (0,0,0), (1,0,0), (0,1,0), (0,0,1), (1,0,1), (0,1,0),
    (0,0,1), (1,1,1): two twice and (1,1,0), (0,1,1) never. MONAI >= 1.4 takes all eight; the
    official weights were trained with this order, so it is kept."""

    ORDER = ((0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 0, 1), (0, 1, 0), (0, 0, 1), (1, 1, 1))

    def forward(self, x):
        if x.dim() != 5:
            return super().forward(x)
        d, h, w = x.shape[1:4]
        if d % 2 or h % 2 or w % 2:
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2, 0, d % 2))
        x = torch.cat([x[:, i::2, j::2, k::2, :] for i, j, k in self.ORDER], -1)
        return self.reduction(self.norm(x))


def tiled_bias(bias: torch.Tensor, n: int) -> torch.Tensor:
    """(..., N, N) -> (..., 3N + 1, 3N + 1): `bias` tiled 3 x 3 over [M, F, field] tokens, zero in
    the row and column of the time token (position 0)."""
    tiled = bias.repeat(*([1] * (bias.dim() - 2)), 3, 3)
    return F.pad(tiled, (1, 0, 1, 0))


class ConditionalWindowAttention(WindowAttention):
    """MONAI's window attention; with `cond` (B nW, 2N + 1, C) = [time, M, F] tokens prepended to
    the field tokens, attention runs over all 3N + 1 tokens and returns the N field tokens."""

    def __init__(self, *args, cond_mask: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.cond_mask = cond_mask

    def forward(self, x, mask, cond=None):
        if cond is None:
            return super().forward(x, mask)
        b, n, c = x.shape
        x = torch.cat([cond, x], dim=1)
        m = x.shape[1]
        h = self.num_heads
        qkv = self.qkv(x).reshape(b, m, 3, h, c // h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        rpb = self.relative_position_bias_table[self.relative_position_index.reshape(-1)].reshape(n, n, -1)
        bias = tiled_bias(rpb.permute(2, 0, 1), n).unsqueeze(0)          # (1, h, m, m)
        if mask is not None and self.cond_mask:
            nw = mask.shape[0]
            bias = (bias.unsqueeze(0) + tiled_bias(mask, n)[None, :, None]).expand(b // nw, nw, h, m, m)
            bias = bias.reshape(b, h, m, m)
        p = self.attn_drop.p if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), dropout_p=p, scale=self.scale)
        out = out.transpose(1, 2).reshape(b, m, c)[:, -n:]
        return self.proj_drop(self.proj(out))


def _to_channels_last(x):
    return x.permute(0, *range(2, x.dim()), 1)


def _to_channels_first(x):
    return x.permute(0, x.dim() - 1, *range(1, x.dim() - 1))


class SwinBlock(nn.Module):
    """A Swin block (the MONAI/official layout) that records its windows (`record`) or attends
    with the conditional tokens of the same window (`cond`)."""

    def __init__(self, dim, num_heads, window_size, shift_size, drop_path=0.0, cond_mask=True):
        super().__init__()
        self.window_size, self.shift_size = tuple(window_size), tuple(shift_size)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = ConditionalWindowAttention(dim, num_heads=num_heads, window_size=self.window_size,
                                               qkv_bias=True, cond_mask=cond_mask)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLPBlock(hidden_size=dim, mlp_dim=4 * dim, act="GELU", dropout_rate=0.0, dropout_mode="swin")

    def attention(self, x, mask, cond=None, records: list | None = None):
        b, *s, c = x.shape
        window, shift = get_window_size(tuple(s), self.window_size, self.shift_size)
        pad = [(w - n % w) % w for n, w in zip(s, window)]
        x = F.pad(self.norm1(x), [0, 0] + [v for p in reversed(pad) for v in (0, p)])
        padded = list(x.shape[1:-1])
        axes = tuple(range(1, len(s) + 1))
        shifted = any(i > 0 for i in shift)
        if shifted:
            x = torch.roll(x, shifts=tuple(-i for i in shift), dims=axes)
        windows = window_partition(x, window)
        if records is not None:
            records.append(windows)
        out = self.attn(windows, mask=mask if shifted else None, cond=cond)
        x = window_reverse(out.view(-1, *window, c), window, [b, *padded])
        if shifted:
            x = torch.roll(x, shifts=shift, dims=axes)
        return x[(slice(None), *[slice(0, n) for n in s])].contiguous()

    def forward(self, x, mask, cond=None, records=None):
        x = x + self.drop_path(self.attention(x, mask, cond, records))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class BasicLayer(nn.Module):
    """One Swin stage: `depth` blocks alternating unshifted / shifted windows, then patch merging."""

    def __init__(self, dim, depth, num_heads, window_size, drop_path, cond_mask=True):
        super().__init__()
        self.window_size = tuple(window_size)
        self.shift_size = tuple(w // 2 for w in window_size)
        self.blocks = nn.ModuleList([
            SwinBlock(dim, num_heads, window_size, self.shift_size if i % 2 else (0,) * len(window_size),
                      drop_path[i], cond_mask) for i in range(depth)])
        self.downsample = OfficialPatchMerging(dim=dim, norm_layer=nn.LayerNorm, spatial_dims=len(window_size))

    def forward(self, x, conds=None, records=None):
        b, c, *s = x.shape
        window, shift = get_window_size(tuple(s), self.window_size, self.shift_size)
        x = _to_channels_last(x)
        padded = [int(math.ceil(n / w)) * w for n, w in zip(s, window)]
        mask = compute_mask(padded, window, shift, x.device)
        for j, blk in enumerate(self.blocks):
            x = blk(x, mask, None if conds is None else conds[j], records)
        return _to_channels_first(self.downsample(x))


class SwinTransformer(nn.Module):
    """Patch embedding (2) and four Swin stages; returns the five normalised feature maps and,
    with `record`, every block's windows per stage."""

    def __init__(self, in_chans, embed_dim, window_size, depths, num_heads, spatial_dims=3, cond_mask=True):
        super().__init__()
        self.patch_embed = PatchEmbed(patch_size=2, in_chans=in_chans, embed_dim=embed_dim, norm_layer=None,
                                      spatial_dims=spatial_dims)
        self.pos_drop = nn.Dropout(p=0.0)
        dpr = [0.0] * sum(depths)
        for i in range(len(depths)):
            layer = BasicLayer(embed_dim * 2 ** i, depths[i], num_heads[i], window_size,
                               dpr[sum(depths[:i]):sum(depths[:i + 1])], cond_mask)
            setattr(self, f"layers{i + 1}", nn.ModuleList([layer]))
        self.num_layers = len(depths)

    @staticmethod
    def proj_out(x):
        return _to_channels_first(F.layer_norm(_to_channels_last(x), [x.shape[1]]))

    def forward(self, x, conds=None, record: bool = False):
        x = self.pos_drop(self.patch_embed(x))
        outs, records = [self.proj_out(x)], []
        for i in range(self.num_layers):
            rec = [] if record else None
            x = getattr(self, f"layers{i + 1}")[0](x.contiguous(), None if conds is None else conds[i], rec)
            outs.append(self.proj_out(x))
            records.append(rec)
        return (outs, records) if record else outs


class ConcatFusion(nn.Module):
    """Table 2 row 5 ("CF UViT"): M, F and the field embedded into patch tokens separately
    (patches of `patch`, U-ViT's 3D patch size, so that global attention stays affordable),
    concatenated with a time token and passed through a U-ViT (13 blocks in the paper, long
    skips); a linear layer turns each field token back into its patch of the backbone's 1/2 grid,
    which goes on into the backbone's Swin stages."""

    def __init__(self, embed_dim, num_heads, depth=13, patch=8):
        super().__init__()

        self.patch = patch
        self.embed = nn.ModuleList([PatchEmbed(patch_size=patch, in_chans=c, embed_dim=embed_dim, norm_layer=None,
                                               spatial_dims=3) for c in (1, 1, 3)])
        half = depth // 2
        self.in_blocks = nn.ModuleList([Block(embed_dim, num_heads) for _ in range(half)])
        self.mid_block = Block(embed_dim, num_heads)
        self.out_blocks = nn.ModuleList([Block(embed_dim, num_heads, skip=True) for _ in range(half)])
        self.norm = nn.LayerNorm(embed_dim)
        self.k = patch // 2                       # the backbone's tokens are patches of 2
        self.decoder_pred = nn.Linear(embed_dim, embed_dim * self.k ** 3)

    def forward(self, m, f, x, time_token):
        maps = [emb(v) for emb, v in zip(self.embed, (m, f, x))]
        b, c, *g = maps[-1].shape
        tokens = torch.cat([time_token[:, None]] + [v.flatten(2).transpose(1, 2) for v in maps], dim=1)
        skips = []
        for blk in self.in_blocks:
            tokens = blk(tokens)
            skips.append(tokens)
        tokens = self.mid_block(tokens)
        for blk in self.out_blocks:
            tokens = blk(tokens, skips.pop())
        field = self.decoder_pred(self.norm(tokens)[:, -math.prod(g):])      # (B, n, k^3 C)
        k = self.k
        field = field.view(b, *g, k, k, k, c).permute(0, 7, 1, 4, 2, 5, 3, 6)
        return field.reshape(b, c, *[n * k for n in g])


def padded_size(n: int, window: int) -> int:
    """The size the official module accepts: a multiple of 32 (five halvings) with at least a
    whole window at the last stage (16 x window)."""
    return max(-(-n // 32) * 32, -(-16 * window // 32) * 32)


class DiffuseRegSwinUNETR(nn.Module):
    """The conditional SwinUNETR denoiser (module names as the official `SwinUNETR`)."""

    def __init__(self, feature_size: int = 120, depths: Sequence[int] = (2, 2, 2, 2),
                 num_heads: Sequence[int] = (3, 6, 12, 24), window_size: Sequence[int] = (2, 4, 4),
                 out_channels: int = 3, norm_name: str = "instance", cond_mask: bool = True,
                 time_resblocks: bool = True, fusion: str = "layerwise", fusion_depth: int = 13):
        super().__init__()
        if feature_size % 12:
            raise ValueError("feature_size must be divisible by 12")
        if fusion not in ("layerwise", "concat"):
            raise ValueError(f"fusion must be layerwise or concat, got {fusion!r}")
        fs, self.depths, self.window_size = feature_size, tuple(depths), tuple(window_size)
        self.embed_dim, self.fusion = fs, fusion
        self.swinViT = SwinTransformer(3, fs, window_size, depths, num_heads, cond_mask=cond_mask)
        if fusion == "layerwise":
            self.swinViT_cond = SwinTransformer(1, fs, window_size, depths, num_heads)
        else:
            self.fuse = ConcatFusion(fs, num_heads[0], fusion_depth)
        td = fs if time_resblocks else None
        self.encoder1 = TimeUnetrBasicBlock(3, 3, fs, norm_name, td)
        self.encoder2 = TimeUnetrBasicBlock(3, fs, fs, norm_name, td)
        self.encoder3 = TimeUnetrBasicBlock(3, 2 * fs, 2 * fs, norm_name, td)
        self.encoder4 = TimeUnetrBasicBlock(3, 4 * fs, 4 * fs, norm_name, td)
        self.encoder10 = TimeUnetrBasicBlock(3, 16 * fs, 16 * fs, norm_name, td)
        self.decoder5 = TimeUnetrUpBlock(3, 16 * fs, 8 * fs, norm_name, td)
        self.decoder4 = TimeUnetrUpBlock(3, 8 * fs, 4 * fs, norm_name, td)
        self.decoder3 = TimeUnetrUpBlock(3, 4 * fs, 2 * fs, norm_name, td)
        self.decoder2 = TimeUnetrUpBlock(3, 2 * fs, fs, norm_name, td)
        self.decoder1 = TimeUnetrUpBlock(3, fs, fs, norm_name, td)
        self.out = UnetOutBlock(spatial_dims=3, in_channels=fs, out_channels=out_channels)
        self.time_embed = nn.Sequential(nn.Linear(fs, 4 * fs), nn.SiLU(), nn.Linear(4 * fs, fs))
        if fusion == "layerwise":
            for i in range(len(self.depths)):
                setattr(self, f"time_linear{i}", nn.Sequential(nn.SiLU(), nn.Linear(fs, fs * 2 ** i)))

    def conditions(self, m, f, time_token):
        """Per stage, per block: [time, M, F] tokens of every window (B nW, 2N + 1, C)."""
        _, m_rec = self.swinViT_cond(m, record=True)
        _, f_rec = self.swinViT_cond(f, record=True)
        b = m.shape[0]
        conds = []
        for i in range(len(self.depths)):
            t_i = getattr(self, f"time_linear{i}")(time_token)             # (B, C_i)
            stage = []
            for mw, fw in zip(m_rec[i], f_rec[i]):
                t_w = t_i.repeat_interleave(mw.shape[0] // b, dim=0)[:, None]   # windows are batch-major
                stage.append(torch.cat([t_w, mw, fw], dim=1))
            conds.append(stage)
        return conds

    def forward(self, x_in: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        size = x_in.shape[2:]
        target = [padded_size(n, w) for n, w in zip(size, self.window_size)]
        if all(n == 32 for n in target):
            target[-1] = 64       # the 1/32 bottleneck needs two voxels for its instance norms
        pad = [v for n, p in zip(reversed(size), reversed(target)) for v in (0, p - n)]
        x_in = F.pad(x_in, pad) if any(pad) else x_in
        m, f, x = x_in[:, :1], x_in[:, 1:2], x_in[:, 2:]
        time_token = self.time_embed(timestep_embedding(t.reshape(-1), self.embed_dim))
        if self.fusion == "layerwise":
            hidden = self.swinViT(x, conds=self.conditions(m, f, time_token))
        else:
            hidden = self.backbone_after_fusion(self.fuse(m, f, x, time_token))
        enc0 = self.encoder1(x, time_token)
        enc1 = self.encoder2(hidden[0], time_token)
        enc2 = self.encoder3(hidden[1], time_token)
        enc3 = self.encoder4(hidden[2], time_token)
        dec4 = self.encoder10(hidden[4], time_token)
        dec3 = self.decoder5(dec4, hidden[3], time_token)
        dec2 = self.decoder4(dec3, enc3, time_token)
        dec1 = self.decoder3(dec2, enc2, time_token)
        dec0 = self.decoder2(dec1, enc1, time_token)
        out = self.out(self.decoder1(dec0, enc0, time_token))
        return out[(slice(None), slice(None), *[slice(0, n) for n in size])]

    def backbone_after_fusion(self, x0):
        """The Swin stages on the fused field tokens (no conditional tokens)."""
        sw = self.swinViT
        outs = [sw.proj_out(x0)]
        x = x0
        for i in range(sw.num_layers):
            x = getattr(sw, f"layers{i + 1}")[0](x.contiguous())
            outs.append(sw.proj_out(x))
        return outs


def diffusereg_swin(size: str = "small", **kwargs) -> DiffuseRegSwinUNETR:
    return DiffuseRegSwinUNETR(**{**SIZES[size], **kwargs})

"""FSDiffReg's network (Qin & Li, MICCAI 2023; official code xmed-lab/FSDiffReg,
model/diffusion_3D/unet.py `UNet`), with the official parameter names so an official state dict
loads with strict=True (benchmarks/fsdiffreg_fidelity.py).

DiffuseMorph's conditional DDPM U-Net (nets.sr3_unet, reused: encoder, middle, the decoder kept as
`ups_diff`, `final_conv` giving eps-hat) plus what FSDiffReg adds in place of DiffuseMorph's separate
deformation network:
- a second decoder `ups_regis` (the registration branch): each of its residual blocks takes
  concat(its previous output, the encoder skip, the diffusion decoder's output at that block), so
  the diffusion features guide it;
- the feature-wise diffusion-guided module `ups_adapt` (FeatureFusion, the code's
  SelfAttention_fuse) after every decoder block: linear attention with the registration features
  as queries and the diffusion features as keys and values, plus the queries, to a D-channel field
  (`defmgen`), nearest-upsampled to the input size and passed through one more convolution
  (`nonlinear`);
- `final_conv_defm`: GroupNorm-Swish-convolution on concat(registration features, eps-hat).
The field is the mean of the per-block fields and the last one (voxels, channel c along array
axis c). forward(x, t) -> (eps-hat, field) with x = concat(moving, fixed, x_t).

The official code is 3D only. In 2D the reused DiffuseMorph blocks are its 2D ones (GroupNorm 32,
softmax attention); FeatureFusion keeps the official GroupNorm(4) and 4-head linear attention, and
final_conv_defm uses the official 3 groups where they divide its channels (3D official: 8 + 1 = 9),
else 1 (2D official: 64 + 1 = 65).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .sr3_unet import OFFICIAL as SR3_OFFICIAL, ResnetBlocWithAttn, SR3UNet, Swish, Upsample, _conv

# the official configuration (config/train_3D.json "unet"; image_size [128, 128, 32]: its second
# entry is the running size the attention resolutions are counted from); 2D: DiffuseMorph's 2D U-Net
OFFICIAL = {2: dict(SR3_OFFICIAL[2]), 3: dict(SR3_OFFICIAL[3], attn_res=(10,), image_size=128)}
FUSE_GROUPS = 4       # the code's SelfAttention_fuse: GroupNorm(4), 4 heads
FUSE_HEADS = 4
DEFM_GROUPS = 3       # the code's final_conv_defm: Block(..., groups=3)


class FeatureFusion(nn.Module):
    """The feature-wise diffusion-guided module (the code's SelfAttention_fuse)."""

    def __init__(self, ndim: int, channels: int):
        super().__init__()
        if channels % FUSE_GROUPS:
            raise ValueError(f"FSDiffReg feature fusion needs channels divisible by {FUSE_GROUPS}, got {channels}")
        self.norm = nn.GroupNorm(FUSE_GROUPS, channels)
        self.out = _conv(ndim)(channels, channels, 1)
        self.defmgen = _conv(ndim)(channels, ndim, 3, padding=1)
        self.nonlinear = _conv(ndim)(ndim, ndim, 3, padding=1)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, size) -> torch.Tensor:
        b, c, *spatial = q.shape
        h = FUSE_HEADS
        # one norm for all three (its statistics are per sample and group); heads split channels
        qn, kn, vn = (self.norm(t).reshape(b, h, c // h, -1) for t in (q, k, v))
        context = torch.einsum("bhdn,bhen->bhde", kn.softmax(dim=-1), vn)
        out = torch.einsum("bhde,bhdn->bhen", context, qn).reshape(b, c, *spatial)
        field = self.defmgen(self.out(out) + q)
        return self.nonlinear(F.interpolate(field, size=tuple(size), mode="nearest"))


class FieldHead(nn.Module):
    """GroupNorm-Swish-convolution to the field (the code's final_conv_defm, a Block with its own
    group count; keys `block.0` and `block.3` as in sr3_unet.Block)."""

    def __init__(self, ndim: int, cin: int):
        super().__init__()
        groups = DEFM_GROUPS if cin % DEFM_GROUPS == 0 else 1
        self.block = nn.Sequential(nn.GroupNorm(groups, cin), Swish(), nn.Identity(),
                                   _conv(ndim)(cin, ndim, 3, padding=1))

    def forward(self, x):
        return self.block(x)


class FSDiffRegUNet(SR3UNet):
    """(concat(moving, fixed, x_t), t) -> (eps-hat, field)."""

    def __init__(self, ndim: int, **kwargs):
        super().__init__(ndim, **kwargs)
        # SR3UNet's decoder is FSDiffReg's diffusion decoder, under the official name
        self.ups_diff = self.ups
        del self.ups
        regis, adapt = [], []
        for layer in self.ups_diff:
            if isinstance(layer, ResnetBlocWithAttn):
                conv = layer.res_block.block1.block[-1]            # in: previous + skip, out: this level
                cin, cout = conv.in_channels, conv.out_channels
                mlp = layer.res_block.mlp
                regis.append(ResnetBlocWithAttn(ndim, cin + cout, cout, mlp[1].in_features if mlp else None,
                                                kwargs.get("dropout", 0.0), layer.attn is not None))
                adapt.append(FeatureFusion(ndim, cout))
            else:
                regis.append(Upsample(ndim, layer.conv.in_channels))
                adapt.append(nn.Identity())
        self.ups_regis = nn.ModuleList(regis)
        self.ups_adapt = nn.ModuleList(adapt)
        out_ch = self.final_conv.block[-1].in_channels
        self.final_conv_defm = FieldHead(ndim, out_ch + self.final_conv.block[-1].out_channels)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if any(n % self.multiple for n in x.shape[2:]):
            raise ValueError(f"FSDiffReg input {tuple(x.shape[2:])}: every side must be a multiple of {self.multiple}")
        size = x.shape[2:]
        x, skips, temb = self.encode(x, t)           # the diffusion U-Net's own encoder
        x_diff, x_reg, fields = x, x, []
        for diff, reg, adapt in zip(self.ups_diff, self.ups_regis, self.ups_adapt):
            if isinstance(diff, ResnetBlocWithAttn):
                skip = skips.pop()
                x_diff = diff(torch.cat([x_diff, skip], 1), temb)
                x_reg = reg(torch.cat([x_reg, skip, x_diff], 1), temb)
                fields.append(adapt(x_reg, x_diff, x_diff, size))
            else:
                x_diff, x_reg = diff(x_diff), reg(x_reg)
        eps = self.final_conv(x_diff)
        fields.append(self.final_conv_defm(torch.cat([x_reg, eps], 1)))
        return eps, torch.stack(fields, 1).mean(1)

"""The ablated diffusion model (ADM) U-Net of Dhariwal & Nichol (2021), as a feature extractor.

Our own implementation of the architecture of OpenAI's guided-diffusion `UNetModel`. Parameter
names follow the official checkpoints, so `256x256_diffusion_uncond.pt` loads with
`load_state_dict(strict=True)` key for key. Written here rather than taken from diffusers because
diffusers' UNet2DModel names its parameters differently and cannot stop at an intermediate block.

Blocks are numbered as in the DGIR paper: the input blocks first (0..17 for the 256x256 model),
then the middle block (18), then the output blocks (19..36). `features(x, t, n)` runs the network
only up to block n. The official code wraps attention in its own gradient-checkpoint function,
which breaks when weights do not require grad; here there is no checkpointing, so the model can be
frozen for real (`freeze()`).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError


@dataclass(frozen=True)
class ADMConfig:
    """Architecture hyper-parameters. `attention_ds` are downsampling factors (1 = full
    resolution), so the same model can run on any input size divisible by 2**(levels-1)."""
    in_channels: int = 3
    model_channels: int = 256
    out_channels: int = 6            # learn_sigma: epsilon and the variance interpolation
    num_res_blocks: int = 2
    channel_mult: tuple[int, ...] = (1, 1, 2, 2, 4, 4)
    attention_ds: tuple[int, ...] = (8, 16, 32)   # resolutions 32, 16, 8 of a 256 image
    num_head_channels: int = 64
    use_scale_shift_norm: bool = True
    resblock_updown: bool = True
    num_groups: int = 32
    dropout: float = 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channel_mult"] = list(self.channel_mult)
        d["attention_ds"] = list(self.attention_ds)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ADMConfig":
        d = dict(d)
        d["channel_mult"] = tuple(d["channel_mult"])
        d["attention_ds"] = tuple(d["attention_ds"])
        return cls(**d)


# guided-diffusion `256x256_diffusion_uncond.pt` (model card flags of the official README)
ADM_256_UNCOND = ADMConfig()


def small_config(width: int = 32, out_channels: int = 3, **kw) -> ADMConfig:
    """The same architecture (6 levels, 2 res blocks, 37 blocks) at a small width, so the
    paper's block numbers keep their meaning. Predicts epsilon only (no learned sigma)."""
    return ADMConfig(model_channels=width, out_channels=out_channels,
                     num_head_channels=min(64, width * 2), **kw)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding, [cos | sin] order as guided-diffusion (weights depend on it)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32,
                                                            device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class Resample(nn.Module):
    """Parameter-free 2x nearest upsampling or 2x average pooling (inside up/down res blocks)."""

    def __init__(self, up: bool):
        super().__init__()
        self.up = up

    def forward(self, x):
        return F.interpolate(x, scale_factor=2, mode="nearest") if self.up else F.avg_pool2d(x, 2)


class Upsample(nn.Module):
    """Nearest 2x then a 3x3 conv (used only when resblock_updown is off)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x, emb=None):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class Downsample(nn.Module):
    """Strided 3x3 conv (used only when resblock_updown is off)."""

    def __init__(self, channels: int):
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x, emb=None):
        return self.op(x)


class ResBlock(nn.Module):
    def __init__(self, channels: int, emb_channels: int, out_channels: int | None = None,
                 scale_shift: bool = True, up: bool = False, down: bool = False,
                 groups: int = 32, dropout: float = 0.0):
        super().__init__()
        out_channels = out_channels or channels
        self.scale_shift = scale_shift
        self.in_layers = nn.Sequential(nn.GroupNorm(groups, channels), nn.SiLU(),
                                       nn.Conv2d(channels, out_channels, 3, padding=1))
        self.updown = up or down
        if self.updown:
            self.h_upd, self.x_upd = Resample(up), Resample(up)
        else:
            self.h_upd = self.x_upd = nn.Identity()
        self.emb_layers = nn.Sequential(
            nn.SiLU(), nn.Linear(emb_channels, (2 if scale_shift else 1) * out_channels))
        self.out_layers = nn.Sequential(nn.GroupNorm(groups, out_channels), nn.SiLU(),
                                        nn.Dropout(dropout),
                                        nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip_connection = (nn.Identity() if out_channels == channels
                                else nn.Conv2d(channels, out_channels, 1))

    def forward(self, x, emb):
        if self.updown:
            h = self.in_layers[:-1](x)
            h = self.in_layers[-1](self.h_upd(h))
            x = self.x_upd(x)
        else:
            h = self.in_layers(x)
        e = self.emb_layers(emb).to(h.dtype)[:, :, None, None]
        if self.scale_shift:
            scale, shift = e.chunk(2, dim=1)
            h = self.out_layers[0](h) * (1 + scale) + shift
            h = self.out_layers[1:](h)
        else:
            h = self.out_layers(h + e)
        return self.skip_connection(x) + h


class AttentionBlock(nn.Module):
    """Self-attention over all positions; heads are split before q/k/v ("legacy" order of the
    official checkpoints)."""

    def __init__(self, channels: int, head_channels: int = 64, groups: int = 32):
        super().__init__()
        self.heads = max(1, channels // head_channels)
        if channels % self.heads:
            raise ValueError(f"{channels} channels do not split into {self.heads} heads")
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj_out = nn.Conv1d(channels, channels, 1)

    def forward(self, x, emb=None):
        b, c, *spatial = x.shape
        x = x.reshape(b, c, -1)
        qkv = self.qkv(self.norm(x))
        n = qkv.shape[-1]
        ch = c // self.heads
        q, k, v = qkv.reshape(b * self.heads, 3 * ch, n).split(ch, dim=1)
        # (B*heads, N, ch); the default scale 1/sqrt(ch) equals the official split scaling
        a = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        h = self.proj_out(a.transpose(1, 2).reshape(b, c, n))
        return (x + h).reshape(b, c, *spatial)


class EmbedSequential(nn.Sequential):
    """A Sequential whose layers all take (x, emb); named like the official checkpoint's."""

    def forward(self, x, emb):
        for layer in self:
            x = layer(x, emb) if not isinstance(layer, nn.Conv2d) else layer(x)
        return x


@dataclass
class BlockInfo:
    index: int        # the paper's block number n
    name: str         # e.g. "input_blocks.11", "middle_block", "output_blocks.10"
    channels: int
    stride: int       # downsampling factor of its output w.r.t. the input image


class ADMUNet(nn.Module):
    def __init__(self, config: ADMConfig = ADM_256_UNCOND):
        super().__init__()
        c = config
        self.config = c
        g, ss, do = c.num_groups, c.use_scale_shift_norm, c.dropout
        emb_dim = 4 * c.model_channels
        self.time_embed = nn.Sequential(nn.Linear(c.model_channels, emb_dim), nn.SiLU(),
                                        nn.Linear(emb_dim, emb_dim))

        def res(cin, cout=None, **kw):
            return ResBlock(cin, emb_dim, cout, scale_shift=ss, groups=g, dropout=do, **kw)

        def attn(ch):
            return AttentionBlock(ch, c.num_head_channels, groups=g)

        ch = c.channel_mult[0] * c.model_channels
        self.input_blocks = nn.ModuleList([EmbedSequential(nn.Conv2d(c.in_channels, ch, 3, padding=1))])
        infos = [(ch, 1)]
        skip_chans = [ch]
        ds = 1
        for level, mult in enumerate(c.channel_mult):
            for _ in range(c.num_res_blocks):
                layers = [res(ch, mult * c.model_channels)]
                ch = mult * c.model_channels
                if ds in c.attention_ds:
                    layers.append(attn(ch))
                self.input_blocks.append(EmbedSequential(*layers))
                skip_chans.append(ch)
                infos.append((ch, ds))
            if level != len(c.channel_mult) - 1:
                self.input_blocks.append(EmbedSequential(
                    res(ch, ch, down=True) if c.resblock_updown else Downsample(ch)))
                ds *= 2
                skip_chans.append(ch)
                infos.append((ch, ds))
        self.middle_block = EmbedSequential(res(ch), attn(ch), res(ch))
        infos.append((ch, ds))
        self.output_blocks = nn.ModuleList()
        for level, mult in list(enumerate(c.channel_mult))[::-1]:
            for i in range(c.num_res_blocks + 1):
                layers = [res(ch + skip_chans.pop(), mult * c.model_channels)]
                ch = mult * c.model_channels
                if ds in c.attention_ds:
                    layers.append(attn(ch))
                if level and i == c.num_res_blocks:
                    layers.append(res(ch, ch, up=True) if c.resblock_updown else Upsample(ch))
                    ds //= 2
                self.output_blocks.append(EmbedSequential(*layers))
                infos.append((ch, ds))
        self.out = nn.Sequential(nn.GroupNorm(g, ch), nn.SiLU(),
                                 nn.Conv2d(ch, c.out_channels, 3, padding=1))
        names = ([f"input_blocks.{i}" for i in range(len(self.input_blocks))] + ["middle_block"]
                 + [f"output_blocks.{i}" for i in range(len(self.output_blocks))])
        self.blocks = [BlockInfo(n, name, cc, s) for n, (name, (cc, s)) in enumerate(zip(names, infos))]

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    @property
    def min_multiple(self) -> int:
        """Input sizes must be divisible by this (one halving per level but the last)."""
        return 2 ** (len(self.config.channel_mult) - 1)

    def required_multiple(self, block: int | None = None) -> int:
        """Input sizes must be divisible by this to run up to `block` (None: the whole network):
        an encoder block only needs its own stride, the middle and decoder blocks every level."""
        if block is not None and block < len(self.input_blocks):
            return self.blocks[block].stride
        return self.min_multiple

    def _embed(self, t: torch.Tensor, batch: int, device) -> torch.Tensor:
        t = torch.as_tensor(t, device=device)
        if t.ndim == 0:
            t = t.expand(batch)
        return self.time_embed(timestep_embedding(t, self.config.model_channels))

    def _run(self, x: torch.Tensor, t, stop: int | None) -> torch.Tensor:
        m = self.required_multiple(stop)
        if x.shape[-1] % m or x.shape[-2] % m:
            raise ValueError(f"ADM input {tuple(x.shape[-2:])} must be divisible by {m}")
        emb = self._embed(t, x.shape[0], x.device)
        skips, h, n = [], x, 0
        for block in self.input_blocks:
            h = block(h, emb)
            if n == stop:
                return h
            skips.append(h)
            n += 1
        h = self.middle_block(h, emb)
        if n == stop:
            return h
        n += 1
        for block in self.output_blocks:
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
            if n == stop:
                return h
            n += 1
        return self.out(h)

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        """Predicted noise (and, with learn_sigma, the variance channels) for x_t at step t."""
        return self._run(x, t, None)

    def features(self, x: torch.Tensor, t, block: int) -> torch.Tensor:
        """Output of block `block` (paper numbering) for the noisy input x at timestep t; the
        blocks after it are not run."""
        if not 0 <= block < self.num_blocks:
            raise ValueError(f"block {block} outside 0..{self.num_blocks - 1}")
        return self._run(x, t, block)

    def freeze(self) -> "ADMUNet":
        self.eval()
        self.requires_grad_(False)
        return self


def load_adm(path, config: ADMConfig | None = None, strict: bool = True) -> ADMUNet:
    """Load an ADM checkpoint: an official guided-diffusion state dict (needs `config`, default
    the 256x256 unconditional one) or a file written by the pretraining stage `adm_natural_images`
    (`diffreg pretrain --kind adm_natural_images`: a dict with 'config' and 'state_dict')."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"{path}: checkpoint not found") from None
    except Exception as exc:  # not a zip/pickle, truncated, or code in it (weights_only refuses it)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"{path}: not a PyTorch checkpoint of weights ({type(exc).__name__}: {first[:200]})") from None
    if isinstance(obj, dict) and "state_dict" in obj and "config" in obj:
        config = ADMConfig.from_dict(obj["config"])
        obj = obj["state_dict"]
    model = ADMUNet(config or ADM_256_UNCOND)
    model.load_state_dict(obj, strict=strict)
    return model

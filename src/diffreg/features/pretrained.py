"""VGG and DINO feature models, loaded from weight files the user gives (no downloads).

Own definitions with the parameter layout of torchvision's VGG (`features.<i>.weight`) and of
the DINO / DINOv2 ViT checkpoints (`blocks.<i>.attn.qkv.weight`, ...), because torchvision and
timm are not dependencies. Without a file, building one raises NeedsWeights and the table marks
the row "needs weights".
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from diffreg.errors import InputError

from .base import FeatureModel, NeedsWeights, imagenet_normalise

# torchvision VGG layouts: numbers are conv widths, "M" a 2x2 max-pool
VGG_LAYOUTS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}


def _load_state(path) -> dict:
    if path is None:
        raise NeedsWeights("no weights file given")
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: weights file not found")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(f"{p}: unreadable weights ({exc})") from None
    for key in ("teacher", "state_dict", "model"):   # DINO training checkpoints nest the weights
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    return {re.sub(r"^(module\.)?(backbone\.)?", "", k): v for k, v in obj.items()}


class VGGFeatures(FeatureModel):
    """Output of the ReLU after conv `layer` ("relu3_3": stride 4, 256 channels)."""

    def __init__(self, path, layer: str = "relu3_3"):
        super().__init__()
        state = {k: v for k, v in _load_state(path).items() if k.startswith("features.")}
        n_conv = sum(1 for k in state if k.endswith(".weight"))
        if any(k.endswith("running_mean") for k in state):
            raise InputError(f"{path}: batch-norm VGG variants are not supported")
        name = {8: "vgg11", 10: "vgg13", 13: "vgg16", 16: "vgg19"}.get(n_conv)
        if name is None:
            raise InputError(f"{path}: not a torchvision VGG state dict ({n_conv} conv layers)")
        m = re.fullmatch(r"relu(\d)_(\d)", layer)
        if not m:
            raise ValueError(f"VGG layer must look like 'relu3_3', got {layer!r}")
        stage, conv_in_stage = int(m.group(1)), int(m.group(2))
        layers, cin, s, k, stop = [], 3, 1, 0, None
        for item in VGG_LAYOUTS[name]:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
                s += 1
                k = 0
                continue
            layers += [nn.Conv2d(cin, item, 3, padding=1), nn.ReLU()]
            cin, k = item, k + 1
            if (s, k) == (stage, conv_in_stage):
                stop, self.channels = len(layers), item
        if stop is None:
            raise ValueError(f"{name} has no layer {layer}")
        self.features = nn.Sequential(*layers)
        self.features.load_state_dict(
            {k.removeprefix("features."): v for k, v in state.items()}, strict=True)
        self.features = self.features[:stop]
        self.stride = self.multiple = 2 ** (stage - 1)
        self.name = f"{name}:{layer}"
        self.freeze()

    def extract(self, x):
        return self.features(imagenet_normalise(x))


class _ViTBlock(nn.Module):
    def __init__(self, dim: int, heads: int, layerscale: bool):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(dim, 3 * dim)
        self.attn.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(dim, 4 * dim)
        self.mlp.fc2 = nn.Linear(4 * dim, dim)
        if layerscale:   # DINOv2
            self.ls1, self.ls2 = nn.Module(), nn.Module()
            self.ls1.gamma = nn.Parameter(torch.ones(dim))
            self.ls2.gamma = nn.Parameter(torch.ones(dim))
        self.layerscale = layerscale

    def forward(self, x):
        b, n, d = x.shape
        qkv = self.attn.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2]).transpose(1, 2).reshape(b, n, d)
        a = self.attn.proj(a)
        x = x + (a * self.ls1.gamma if self.layerscale else a)
        m = self.mlp.fc2(F.gelu(self.mlp.fc1(self.norm2(x))))
        return x + (m * self.ls2.gamma if self.layerscale else m)


class DINOFeatures(FeatureModel):
    """Patch tokens of the last block (after the final norm) of a DINO/DINOv2 ViT, as a map of
    stride = patch size. Depth, width, patch size and register tokens are read from the file."""

    def __init__(self, path, head_dim: int = 64):
        super().__init__()
        state = _load_state(path)
        state = {k: v for k, v in state.items() if not k.startswith(("head.", "mask_token"))}
        try:
            w = state["patch_embed.proj.weight"]
        except KeyError:
            raise InputError(f"{path}: not a DINO ViT state dict (no patch_embed.proj.weight)") from None
        dim, patch = w.shape[0], w.shape[-1]
        depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
        layerscale = "blocks.0.ls1.gamma" in state
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros_like(state["pos_embed"]))
        if "register_tokens" in state:
            self.register_tokens = nn.Parameter(torch.zeros_like(state["register_tokens"]))
        self.blocks = nn.ModuleList(_ViTBlock(dim, dim // head_dim, layerscale) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        try:
            self.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise InputError(f"{path}: does not match a DINO ViT ({str(exc).splitlines()[0]})") from None
        self.stride = self.multiple = patch
        self.channels = dim
        self.freeze()

    def _pos(self, h: int, w: int) -> torch.Tensor:
        cls_pos, grid = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        n = int(math.isqrt(grid.shape[1]))
        if (h, w) != (n, n):
            grid = grid.reshape(1, n, n, -1).permute(0, 3, 1, 2)
            grid = F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=False)
            grid = grid.permute(0, 2, 3, 1).reshape(1, h * w, -1)
        return torch.cat([cls_pos, grid], dim=1)

    def extract(self, x):
        t = self.patch_embed.proj(imagenet_normalise(x))
        b, d, h, w = t.shape
        t = torch.cat([self.cls_token.expand(b, -1, -1), t.flatten(2).transpose(1, 2)], dim=1)
        t = t + self._pos(h, w)
        extra = 1
        if hasattr(self, "register_tokens"):
            t = torch.cat([t[:, :1], self.register_tokens.expand(b, -1, -1), t[:, 1:]], dim=1)
            extra += self.register_tokens.shape[1]
        for blk in self.blocks:
            t = blk(t)
        t = self.norm(t)[:, extra:]
        return t.transpose(1, 2).reshape(b, d, h, w)

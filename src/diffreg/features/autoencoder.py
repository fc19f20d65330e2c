"""A convolutional autoencoder trained on the registration training images; its encoder features
serve the DeepSim (cosine) and AE+LNCC rows of DGIR's Table 1 (Czolbe et al., 2021).

Own small network: MONAI's AutoEncoder has no access to the intermediate encoder levels that
DeepSim compares.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from diffreg.training.trainer import check_finite_grads, check_finite_terms
from .base import FeatureModel, crop_features, pad_to_multiple


def _conv(dims: int):
    return nn.Conv2d if dims == 2 else nn.Conv3d


class _Level(nn.Sequential):
    def __init__(self, dims: int, cin: int, cout: int):
        conv = _conv(dims)
        super().__init__(conv(cin, cout, 3, padding=1), nn.GroupNorm(min(8, cout), cout), nn.LeakyReLU(0.2),
                         conv(cout, cout, 3, padding=1), nn.GroupNorm(min(8, cout), cout), nn.LeakyReLU(0.2))


class ConvAutoencoder(nn.Module):
    """Encoder levels at strides 1, 2, 4, ... (max-pooling between levels), mirrored decoder,
    sigmoid output; trained to reconstruct images in [0, 1]."""

    def __init__(self, dims: int = 2, channels: Sequence[int] = (16, 32, 64)):
        super().__init__()
        self.dims = dims
        self.channels = tuple(channels)
        cin = 1
        self.encoder = nn.ModuleList()
        for c in self.channels:
            self.encoder.append(_Level(dims, cin, c))
            cin = c
        self.decoder = nn.ModuleList()
        for c in reversed(self.channels[:-1]):
            self.decoder.append(_Level(dims, cin + c, c))
            cin = c
        self.head = _conv(dims)(cin, 1, 1)

    @property
    def multiple(self) -> int:
        return 2 ** (len(self.channels) - 1)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        pool = F.max_pool2d if self.dims == 2 else F.max_pool3d
        levels = []
        for i, level in enumerate(self.encoder):
            x = level(x if i == 0 else pool(x, 2))
            levels.append(x)
        return levels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        levels = self.encode(x)
        h = levels[-1]
        for level, skip in zip(self.decoder, reversed(levels[:-1])):
            h = F.interpolate(h, size=skip.shape[2:], mode="nearest")
            h = level(torch.cat([h, skip], dim=1))
        return torch.sigmoid(self.head(h))


class AutoencoderFeatures(FeatureModel):
    """Frozen encoder features of a trained autoencoder: one level (stride 2**level, for AE+LNCC)
    or a list of levels (DeepSim compares several encoder levels and averages)."""

    def __init__(self, autoencoder: ConvAutoencoder, level: int | Sequence[int] = 1):
        super().__init__()
        levels = [level] if isinstance(level, int) else list(level)
        for lv in levels:
            if not 0 <= lv < len(autoencoder.channels):
                raise ValueError(f"autoencoder level {lv} outside 0..{len(autoencoder.channels) - 1}")
        self.autoencoder = autoencoder
        self.levels = levels
        self.single = isinstance(level, int)
        self.stride = 2 ** levels[0]
        self.multiple = autoencoder.multiple
        self.dims = (autoencoder.dims,)
        self.freeze()

    def forward(self, x: torch.Tensor):
        if x.ndim - 2 not in self.dims:
            raise ValueError(f"autoencoder features take {self.dims[0]}-D batches, got {tuple(x.shape)}")
        if x.shape[1] != 1:
            x = x.mean(dim=1, keepdim=True)
        size = x.shape[2:]
        enc = self.autoencoder.encode(pad_to_multiple(x, self.multiple))
        out = [crop_features(enc[lv], size, 2 ** lv) for lv in self.levels]
        return out[0] if self.single else out

    def pair(self, a, b):
        f = self(torch.cat([a, b]))
        n = a.shape[0]
        if self.single:
            return f[:n], f[n:]
        return [x[:n] for x in f], [x[n:] for x in f]


AE_ADVICE = "check the training images; no model written"


def train_autoencoder(images: Sequence[np.ndarray], iterations: int = 500, batch: int = 4,
                      lr: float = 1e-3, channels: Sequence[int] = (16, 32, 64), seed: int = 0,
                      device: str = "cpu", log: Callable[[str], None] | None = print,
                      log_every: int = 50) -> ConvAutoencoder:
    """Train on equally shaped 2D or 3D images in [0, 1] (reconstruction MSE, Adam)."""
    # the trainer's checks on every step (lazy import: diffreg.methods imports this module)

    if not images:
        raise ValueError("no training images for the autoencoder")
    data = torch.as_tensor(np.stack([np.asarray(i, dtype=np.float32) for i in images]))[:, None]
    dims = data.ndim - 2
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    ae = ConvAutoencoder(dims, channels).to(device)
    opt = torch.optim.Adam(ae.parameters(), lr=lr)
    data = data.to(device)
    start = time.perf_counter()
    for it in range(1, iterations + 1):
        idx = torch.randint(len(data), (batch,), generator=g)
        x = data[idx]
        loss = F.mse_loss(ae(x), x)
        values = check_finite_terms("autoencoder", it, {"loss": loss}, advice=AE_ADVICE)
        opt.zero_grad()
        loss.backward()
        check_finite_grads("autoencoder", it, list(ae.parameters()), values, advice=AE_ADVICE)
        opt.step()
        if log and (it % log_every == 0 or it == iterations):
            rate = it / (time.perf_counter() - start)
            log(f"autoencoder iter {it}/{iterations} loss {loss.item():.5f} {rate:.2f} it/s")
    return ae.eval()

"""What every frozen feature model shares: input preparation, freezing, and the missing-weights error."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from diffreg.errors import InputError


class NeedsWeights(InputError):
    """A feature model whose weights cannot be had offline was asked for without a weights file.
    Tables show its row as "needs weights" instead of a number."""


class FeatureModel(nn.Module):
    """A frozen 2D feature extractor: forward(x) with x (B, 1 or 3, H, W) in [0, 1] returns
    (B, C, h, w) with h = ceil(H / stride). Any input size is accepted (padded inside)."""

    stride: int = 1
    multiple: int = 1      # the network's own input must be divisible by this

    def freeze(self) -> "FeatureModel":
        self.eval()
        self.requires_grad_(False)
        return self

    def train(self, mode: bool = True):
        # always in eval mode: dropout/normalisation statistics must not change the measure
        return super().train(False)

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    dims: tuple[int, ...] = (2,)   # spatial dimensionalities the model accepts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim - 2 not in self.dims:
            raise ValueError(f"{type(self).__name__} takes {self.dims}-D batches (B, C, *S), "
                             f"got {tuple(x.shape)}")
        size = x.shape[2:]
        f = self.extract(pad_to_multiple(x, self.multiple))
        return crop_features(f, size, self.stride)

    def pair(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features of a and b computed in one stacked batch."""
        f = self(torch.cat([a, b]))
        return f[: a.shape[0]], f[a.shape[0]:]


def pad_to_multiple(x: torch.Tensor, multiple: int, value: float = 0.0) -> torch.Tensor:
    """Pad the spatial axes at their end up to a multiple (value 0 = image background), so the
    feature map of the original image is its leading corner."""
    pad = []
    for n in reversed(x.shape[2:]):
        pad += [0, (-n) % multiple]
    return F.pad(x, pad, value=value) if any(pad) else x


def crop_features(f: torch.Tensor, size, stride: int) -> torch.Tensor:
    """The part of a feature map of a padded input that belongs to an input of `size`."""
    return f[(..., *(slice(0, -(-n // stride)) for n in size))]


def to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Grayscale (B, 1, H, W) repeated to three channels; RGB passes through."""
    if x.shape[1] == 1:
        return x.expand(-1, 3, -1, -1)
    if x.shape[1] != 3:
        raise ValueError(f"expected 1 or 3 channels, got {x.shape[1]}")
    return x


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_normalise(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (to_rgb(x) - mean) / std


def window_size(sigma: float) -> int:
    """Odd Gaussian window truncated at 2 sigma: 4 sigma + 1 for integer sigma (the official
    DGIR blur), rounded to the nearest odd size otherwise."""
    return 2 * max(1, round(2 * sigma)) + 1

"""The similarity interface shared by every image (and feature) similarity."""
from __future__ import annotations

import torch
from torch import nn


class Similarity(nn.Module):
    """A similarity between two tensors (B, C, *S) of equal shape.

    ``similarity(a, b)`` is the measure itself (higher is better), averaged over the batch;
    ``forward(a, b)`` is the training loss (lower is better). Subclasses implement ``similarity``
    and ``loss_from_similarity``; the default loss is the negated similarity.
    """

    def similarity(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def loss_from_similarity(self, s: torch.Tensor) -> torch.Tensor:
        return -s

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.loss_from_similarity(self.similarity(a, b))


def check_pair(a: torch.Tensor, b: torch.Tensor, ndim: int | None = None) -> int:
    if a.shape != b.shape:
        raise ValueError(f"similarity inputs differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    if a.ndim not in (4, 5):
        raise ValueError(f"similarity inputs must be (B, C, *S) with 2 or 3 spatial axes, got {tuple(a.shape)}")
    if ndim is not None and a.ndim - 2 != ndim:
        raise ValueError(f"expected {ndim} spatial axes, got {tuple(a.shape)}")
    return a.ndim - 2

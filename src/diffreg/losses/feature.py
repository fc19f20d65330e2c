"""Feature-space similarity: a frozen feature extractor followed by LNCC or cosine on its features.

DGIR (diffusion-model features), DeepSim, and the autoencoder / VGG / DINO baselines plug in their
extractor here. The extractor's weights are frozen for real (requires_grad False, eval mode);
gradients still flow through it to the warped image.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from .base import Similarity, check_pair
from .registries import SIMILARITIES
from .similarity import LNCC


def _as_list(feats) -> list[torch.Tensor]:
    if isinstance(feats, torch.Tensor):
        return [feats]
    return list(feats)


@SIMILARITIES.register("feature")
class FeatureSimilarity(Similarity):
    """similarity = mean over feature maps of measure(f(a), f(b)); loss = 1 - similarity.

    extractor: module (or callable) mapping (B, C, *S) to a tensor (B, K, *S') or a list of such
        (multi-scale); it sees warped and fixed images stacked in one batch (one forward pass), so
        any randomness inside it (e.g. diffusion noise) is drawn for both at once -- an extractor
        that must share noise between the two halves handles that itself.
    measure: "lncc" (per-channel LNCC on the feature maps, window options as LNCC) or "cosine"
        (cosine similarity of feature vectors per voxel, averaged).
    weights: optional per-feature-map weights (default equal).
    """

    def __init__(self, extractor: nn.Module | Callable, measure: str = "lncc",
                 weights: Sequence[float] | None = None, **lncc_kwargs):
        super().__init__()
        if measure not in ("lncc", "cosine"):
            raise ValueError(f"feature measure must be 'lncc' or 'cosine', got {measure!r}")
        if isinstance(extractor, nn.Module):
            extractor.eval()
            for p in extractor.parameters():
                p.requires_grad_(False)
        self.extractor = extractor
        self.measure = measure
        self.weights = None if weights is None else [float(w) for w in weights]
        self.lncc = LNCC(**lncc_kwargs) if measure == "lncc" else None

    def train(self, mode: bool = True):
        super().train(mode)
        if isinstance(self.extractor, nn.Module):
            self.extractor.eval()  # frozen: never switch its dropout/batch-norm to training
        return self

    def _one(self, fa: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
        if self.measure == "lncc":
            return self.lncc.similarity(fa, fb)
        return torch.nn.functional.cosine_similarity(fa, fb, dim=1, eps=1e-8).mean()

    def similarity(self, a, b):
        check_pair(a, b)
        n = a.shape[0]
        feats = _as_list(self.extractor(torch.cat([a, b], 0)))
        weights = self.weights or [1.0] * len(feats)
        if len(weights) != len(feats):
            raise ValueError(f"{len(weights)} feature weights for {len(feats)} feature maps")
        total = sum(w * self._one(f[:n], f[n:]) for w, f in zip(weights, feats))
        return total / sum(weights)

    def loss_from_similarity(self, s):
        return 1.0 - s

"""Similarities and regularisers behind two registries.

- ``build_similarity(name, **kw)``: an nn.Module with ``forward(a, b)`` = loss (lower is better)
  and ``similarity(a, b)`` = the measure (higher is better).
- ``build_regulariser(name, **kw)``: an nn.Module whose forward takes displacement field(s).
"""
from __future__ import annotations

from torch import nn

from .registries import REGULARISERS, SIMILARITIES
# importing a module registers its entries
from . import similarity, ngf, mind, mi, ssim, feature  # noqa: F401
from . import regularisers  # noqa: F401
from .base import Similarity
from .feature import FeatureSimilarity
from .mind import mind_ssc
from .regularisers import compose_chain, jacobian_penalty
from .ssim import ssim_map

__all__ = ["SIMILARITIES", "REGULARISERS", "Similarity", "FeatureSimilarity", "build_similarity",
           "build_regulariser", "mind_ssc", "ssim_map", "compose_chain", "jacobian_penalty"]


def build_similarity(name: str, **kwargs) -> nn.Module:
    return SIMILARITIES.build(name, **kwargs)


def build_regulariser(name: str, **kwargs) -> nn.Module:
    return REGULARISERS.build(name, **kwargs)

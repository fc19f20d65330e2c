"""Feature-space similarities for DGIR and its Table 1 baselines, registered in the loss registry:
"diffusion" (DGIR), "vgg", "dino" (weights from files) and "autoencoder" (a trained AE).

They reuse `losses.FeatureSimilarity` (1 - LNCC or cosine on frozen features of the warped and
fixed images, stacked in one batch). Two additions: diffusion noise shared between the two
halves of that batch, and 3D inputs handled by random 2D slices along one random axis per step,
the same slices for warped and fixed (DGIR, Sec. 3.2).
"""
from __future__ import annotations

import torch
from torch import nn

from diffreg.losses.feature import FeatureSimilarity
from diffreg.losses.registries import SIMILARITIES
from diffreg.nets.adm import ADMUNet, load_adm

from .autoencoder import AutoencoderFeatures, ConvAutoencoder
from .base import FeatureModel, window_size
from .diffusion import DiffusionFeatures
from .pretrained import DINOFeatures, VGGFeatures
from .slices import SliceSampler


class StackedPair(nn.Module):
    """Adapter for FeatureSimilarity, which passes cat([warped, fixed]): the two halves go to
    `model.pair`, so a diffusion model can give both images of a pair the same noise."""

    def __init__(self, model: FeatureModel):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0] // 2
        fa, fb = self.model.pair(x[:n], x[n:])
        if isinstance(fa, torch.Tensor):
            return torch.cat([fa, fb])
        return [torch.cat([p, q]) for p, q in zip(fa, fb)]   # multi-level features


class SlicedFeatureSimilarity(FeatureSimilarity):
    """FeatureSimilarity whose 2D feature model also serves 3D inputs through `SliceSampler`."""

    def __init__(self, model: FeatureModel, measure: str = "lncc", slices: int = 4, **lncc_kwargs):
        super().__init__(StackedPair(model), measure=measure, **lncc_kwargs)
        self.model = model
        self.sampler = SliceSampler(slices)

    def similarity(self, a, b):
        if a.ndim == 5 and 3 not in self.model.dims:
            a, b = self.sampler(a, b)
        return super().similarity(a, b)


# LNCC epsilon: "official" = relu(var) + 1e-6 (DGIR's NewLNCC, config eps 1e-6); "clamp" = max(var, 1e-5)
LNCC_EPS = {"official": dict(eps=1e-6, eps_form="relu"), "clamp": dict(eps=1e-5, eps_form="clamp")}


def lncc_window(sigma: float, border: str = "zeros", eps: str = "official") -> dict:
    """The official DGIR window: Gaussian sigma, truncated at 2 sigma (size 4 sigma + 1), zero
    padding at the feature-map border; `eps` names the variance floor (LNCC_EPS). sigma is in
    feature-map pixels whatever the feature model's stride (as the official code: one sigma)."""
    if eps not in LNCC_EPS:
        raise ValueError(f"LNCC eps must be one of {sorted(LNCC_EPS)}, got {eps!r}")
    return dict(window="gaussian", sigma=float(sigma), size=window_size(sigma), border=border,
                **LNCC_EPS[eps])


@SIMILARITIES.register("diffusion")
def diffusion_similarity(checkpoint=None, model: ADMUNet | None = None, block: int = 29, t: int = 60,
                         sigma: float = 4.0, measure: str = "lncc", noise: str = "shared",
                         slices: int = 4, border: str = "zeros", eps: str = "official") -> SlicedFeatureSimilarity:
    """DGIR's loss 1 - LNCC(g(A o phi), g(B)) with g = ADM block `block` at timestep `t`.
    `checkpoint`: an official guided-diffusion file or one written by the pretraining stage
    `adm_natural_images` (`diffreg pretrain`)."""
    if model is None:
        if checkpoint is None:
            raise ValueError("the diffusion similarity needs a checkpoint or a model")
        model = load_adm(checkpoint)
    feats = DiffusionFeatures(model, block=block, t=t, noise=noise)
    return SlicedFeatureSimilarity(feats, measure=measure, slices=slices,
                                   **(lncc_window(sigma, border, eps) if measure == "lncc" else {}))


@SIMILARITIES.register("vgg")
def vgg_similarity(weights=None, layer: str = "relu3_3", sigma: float = 4.0, measure: str = "lncc",
                   slices: int = 4, border: str = "zeros", eps: str = "official") -> SlicedFeatureSimilarity:
    return SlicedFeatureSimilarity(VGGFeatures(weights, layer), measure=measure, slices=slices,
                                   **(lncc_window(sigma, border, eps) if measure == "lncc" else {}))


@SIMILARITIES.register("dino")
def dino_similarity(weights=None, sigma: float = 2.0, measure: str = "lncc", slices: int = 4,
                    border: str = "zeros", eps: str = "official") -> SlicedFeatureSimilarity:
    return SlicedFeatureSimilarity(DINOFeatures(weights), measure=measure, slices=slices,
                                   **(lncc_window(sigma, border, eps) if measure == "lncc" else {}))


@SIMILARITIES.register("autoencoder")
def autoencoder_similarity(autoencoder: ConvAutoencoder, level=1, sigma: float = 4.0,
                           measure: str = "lncc", slices: int = 4,
                           border: str = "zeros", eps: str = "official") -> SlicedFeatureSimilarity:
    """AE+LNCC (measure "lncc", one level) or DeepSim (measure "cosine", level a list of encoder
    levels, e.g. (0, 1, 2)) on a trained autoencoder."""
    return SlicedFeatureSimilarity(AutoencoderFeatures(autoencoder, level), measure=measure,
                                   slices=slices, **(lncc_window(sigma, border, eps) if measure == "lncc" else {}))

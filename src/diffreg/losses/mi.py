"""Global mutual information: MONAI's Parzen-window estimator, which is correct for inputs in [0, 1]."""
from __future__ import annotations

from .base import Similarity, check_pair
from .registries import SIMILARITIES


@SIMILARITIES.register("mi")
class MutualInformation(Similarity):
    """similarity = MI in nats (Gaussian Parzen windows, ``num_bins`` bins over [0, 1]), averaged
    over batch and channels; loss = -MI (MONAI's value). Inputs must be in [0, 1] (docs/conventions.md)."""

    def __init__(self, num_bins: int = 23, sigma_ratio: float = 0.5):
        super().__init__()
        # deferred: importing MONAI costs about 2 s (it loads matplotlib), paid by every task otherwise
        from monai.losses import GlobalMutualInformationLoss
        self.mi = GlobalMutualInformationLoss(kernel_type="gaussian", num_bins=num_bins, sigma_ratio=sigma_ratio)

    def forward(self, a, b):
        check_pair(a, b)
        return self.mi(a, b)

    def similarity(self, a, b):
        return -self.forward(a, b)

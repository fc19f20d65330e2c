"""The settings of GradICON and uniGradICON (`gradicon`, `unigradicon`): its Config and the values they are checked against,
importable without torch (diffreg.configs)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ..errors import InputError
from ..training.config import TrainerConfig

# the similarity of the loss: ICON's LNCC, or its SquaredLNCC (1 - mean cc^2; multiGradICON)
SIMILARITIES = ("lncc", "lncc_squared")


@dataclass
class GradICONConfig(TrainerConfig):
    RENAMED: ClassVar[dict[str, str]] = {"lmbda": "lambda_reg"}            # model folders saved before
    levels: int = 2                      # the official make_network: 2 downsampled levels
    last_step: bool = False
    backbone_kwargs: dict = field(default_factory=dict)   # tallUNet2 widths (down, up) for small tests
    width: str = "paper"                 # "small": nets.small's tallUNet2 widths (short profiles)
    similarity: str = "lncc"             # "lncc_squared": ICON's SquaredLNCC (multiGradICON's LNCC^2)
    lambda_reg: float = 1.5              # the GradICON term's weight: the official code's lmbda (lung_ct, uniGradICON)
    sigma: float = 5.0                   # ICON's LNCC(sigma=5)
    icon_loss: str = "dense"
    input_shape: list | None = None      # resize to this grid first (uniGradICON: 175^3)
    preprocess: str = "none"             # "mri": clip to [min, q99], scale to [0, 1] (uniGradICON)
    io_iterations: int = 0               # instance optimisation steps at registration
    io_lr: float = 2e-5
    weights: str | None = None           # official regis_net state dict (uniGradICON's .trch)
    inter_subject: bool = True

    def resolve(self, ndim: int, given: set[str]) -> None:
        from ..nets.small import width_kwargs  # deferred: diffreg.nets imports torch

        width_kwargs("gradicon", self.width, type(self).__name__)     # an unknown width fails here
        if self.similarity not in SIMILARITIES:
            raise InputError(f"{type(self).__name__}: similarity = {self.similarity!r}: one of {', '.join(SIMILARITIES)}")
        if self.icon_loss not in ("dense", "sparse"):
            raise InputError(f"{type(self).__name__}: icon_loss = {self.icon_loss!r}: one of dense, sparse")
        if self.preprocess not in ("none", "mri"):
            raise InputError(f"preprocess = {self.preprocess!r}: one of none, mri")
        if self.input_shape is not None and len(self.input_shape) != ndim:
            raise InputError(f"input_shape {self.input_shape} has not {ndim} sides")


@dataclass
class UniGradICONConfig(GradICONConfig):
    last_step: bool = True
    icon_loss: str = "sparse"
    input_shape: list | None = field(default_factory=lambda: [175, 175, 175])
    preprocess: str = "mri"
    io_iterations: int = 50              # the official command's default

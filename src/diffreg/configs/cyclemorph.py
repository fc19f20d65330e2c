"""The settings of CycleMorph (`cyclemorph`): its Config and the values they are checked against,
importable without torch (diffreg.configs)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ..errors import InputError
from ..training.config import TrainerConfig


BETAS = {"adam": (0.9, 0.999), "official": (0.5, 0.999)}


def _official_widths() -> tuple[list, list]:
    """The official encoder / decoder widths, read from the network's module when a config is made."""
    from ..nets.cyclemorph import DECODER, ENCODER  # deferred: diffreg.nets imports torch

    return list(ENCODER), list(DECODER)


@dataclass
class CycleMorphConfig(TrainerConfig):
    REPORTED: ClassVar[tuple[str, ...]] = ("alpha", "beta")
    encoder_nc: list = field(default_factory=lambda: _official_widths()[0])   # official --encoder_nc
    decoder_nc: list = field(default_factory=lambda: _official_widths()[1])   # official --decoder_nc (+ ndim)
    lambda_reg: float = 1.0         # official lambda_R (Brain_train.sh)
    alpha: float = 0.1              # cycle weight: official lambda_A (Brain_train.sh)
    beta: float = 0.5               # identity weight: official lambda_B (Brain_train.sh)
    ncc_window: int = 9             # official crossCorrelation3D(kernel=(9, 9, 9))
    lr: float = 2e-4                # official --lr 2e-4
    betas: str = "adam"             # see methods/cyclemorph.py's docstring
    init: str = "normal"            # official --init_type normal (N(0, 1e-5) conv weights)
    inter_subject: bool = True

    def resolve(self, ndim: int, given: set[str]) -> None:
        if self.betas not in BETAS:
            raise InputError(f"cyclemorph: betas = {self.betas!r}: one of {', '.join(BETAS)}")
        if self.init not in ("normal", "default"):
            raise InputError(f"cyclemorph: init = {self.init!r}: one of normal, default")
        if len(self.encoder_nc) != 5 or len(self.decoder_nc) != 5:
            raise InputError("cyclemorph: encoder_nc and decoder_nc take 5 widths each")

    def adam_betas(self) -> tuple[float, float]:
        return BETAS[self.betas]

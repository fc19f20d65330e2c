"""The settings of SYM-Net (`symnet`): its Config and the values they are checked against,
importable without torch (diffreg.configs)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..errors import InputError
from ..training.config import TrainerConfig

INTEGRATIONS = ("half", "full")


@dataclass
class SYMNetConfig(TrainerConfig):
    REPORTED: ClassVar[tuple[str, ...]] = ("integration", "lambda_jdet")
    RENAMED: ClassVar[dict[str, str]] = {"lambda_smooth": "lambda_reg"}     # model folders saved before
    start_channel: int = 8          # code: Train_sym_onepass.py default 8 (its OASIS example and model: 7)
    lambda_jdet: float = 1000.0     # paper lambda_1 (orientation consistency); code default 100
    lambda_reg: float = 3.0         # smoothness weight: paper lambda_2; code `--smooth` 3
    lambda_mag: float = 0.1         # paper lambda_3; code `--magnitude` 0.1
    time_steps: int = 7             # paper and code: T = 7 scaling-and-squaring steps
    integration: str = "half"       # "half" (paper) or "full" (code, see methods/symnet.py's docstring)
    range_flow: float = 100.0       # code: softsign output x 100 = voxels (not in the paper)
    ncc_window: int = 7             # code: NCC(win=7) (not in the paper)
    padding: str = "zeros"          # code: grid_sample's default padding in every transform
    lr: float = 1e-4                # paper and code: Adam, 1e-4 (code: 140001 iterations, batch 1)
    inter_subject: bool = True

    def resolve(self, ndim: int, given: set[str]) -> None:
        if self.integration not in INTEGRATIONS:
            raise InputError(f"symnet: integration = {self.integration!r}: one of {', '.join(INTEGRATIONS)}")
        if self.padding not in ("zeros", "border"):
            raise InputError(f"symnet: padding = {self.padding!r}: one of zeros, border")
        if self.time_steps < 1 or self.start_channel < 1 or self.ncc_window < 1:
            raise InputError("symnet: time_steps, start_channel and ncc_window must be >= 1")

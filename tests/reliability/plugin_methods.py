"""Test-only methods loaded through DIFFREG_PLUGINS: `nanloss` (its loss turns NaN at the second
step) and `nanfield` (trains fine, registers to a NaN displacement)."""
from __future__ import annotations

import torch
from torch import nn

from diffreg.methods import METHODS, Method, Objective, RegistrationResult, TrainerConfig


class _Step(Objective):
    def __init__(self, nan_from: int | None):
        self.nan_from, self.step = nan_from, 0

    def __call__(self, nets, batch):
        self.step += 1
        moving, fixed = batch
        loss = ((nets["net"].w * moving - fixed) ** 2).mean()
        if self.nan_from is not None and self.step >= self.nan_from:
            loss = loss * float("nan")
        return {"loss": loss, "similarity": loss.detach()}


class _Base(Method):
    Config = TrainerConfig
    nan_from: int | None = None

    def __init__(self, ndim, config, device):
        super().__init__(ndim, config, device)
        net = nn.Module()
        net.w = nn.Parameter(torch.ones(()))
        self.nets["net"] = net

    def objective(self, data):
        return _Step(self.nan_from)

    def register(self, moving, fixed, generator=None):
        disp = torch.full((1, self.ndim, *moving.shape[2:]), float("nan"))
        return RegistrationResult(displacement=disp)


if "nanloss" not in METHODS:
    @METHODS.register("nanloss")
    class NaNLoss(_Base):
        name = "nanloss"
        nan_from = 2

    @METHODS.register("nanfield")
    class NaNField(_Base):
        name = "nanfield"

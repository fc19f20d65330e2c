"""A backbone applied to a (moving, fixed) pair: the input padding U-Nets need, and the
registration of the pairwise methods."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .result import RegistrationResult


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, list[slice]]:
    """Pad the spatial axes at their ends to a multiple (U-Nets halve the size several times);
    returns the padded tensor and the slices that undo it."""
    spatial = x.shape[2:]
    pads = [(-s) % multiple for s in spatial]
    pad_arg = []
    for p in reversed(pads):
        pad_arg += [0, p]
    crop = [slice(None), slice(None)] + [slice(0, s) for s in spatial]
    return (F.pad(x, pad_arg, mode="replicate") if any(pads) else x), crop


def predict_pair(net: nn.Module, moving: torch.Tensor, fixed: torch.Tensor, pad_multiple: int) -> torch.Tensor:
    """Displacement (B, D, *S) of a backbone taking [moving, fixed] on the channel axis."""
    x, crop = pad_to_multiple(torch.cat([moving, fixed], dim=1), pad_multiple)
    return net(x)[tuple(crop)]


@torch.no_grad()
def register_pair(net: nn.Module, moving: torch.Tensor, fixed: torch.Tensor, pad_multiple: int) -> RegistrationResult:
    """One forward pass in eval mode: the registration of every single-network pairwise method."""
    net.eval()
    device = next(net.parameters()).device
    return RegistrationResult(predict_pair(net, moving.to(device), fixed.to(device), pad_multiple))

"""Device and thread selection shared by every command that runs a network."""
from __future__ import annotations

import os
import random

import numpy as np
import torch

from .errors import InputError


def resolve_device(requested: str | None = None) -> torch.device:
    """'auto' picks CUDA when visible; 'cuda' without a visible GPU is one clear error, not a
    silent fall-back to a 100x slower CPU run on a cluster."""
    requested = requested or os.environ.get("DIFFREG_DEVICE", "auto")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            visible = os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>")
            raise InputError(f"device '{requested}' requested but no CUDA GPU is visible "
                             f"(CUDA_VISIBLE_DEVICES={visible}); use --device cpu or request a GPU")
        return torch.device(requested)
    if requested == "cpu":
        return torch.device("cpu")
    raise InputError(f"unknown device '{requested}' (use auto, cpu or cuda)")


def set_threads(threads: int | None) -> int:
    if threads and threads > 0:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)

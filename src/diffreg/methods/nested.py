"""A method built on another trained run (DiffuseReg's first-stage network φ₀, a pretrained
registration network to refine): the config key holds the run's model folder, staged by
`--dep KEY=PATH`, and the method keeps that run's networks among its own, so its saved weights
hold them and registration needs no extra file.

After `nested_method`, the owner stores `sub.describe()` under the key: config.json then says
how to rebuild the sub-method's networks, and model.pt fills their weights.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import InputError
from .base import Method, build_method, load_method


def nested_method(value: str | dict, device: torch.device, key: str, owner: str) -> Method:
    """The trained method `value` names: a model folder (or its model.pt) when training, or the
    description a saved owner holds (networks untrained until the owner loads its weights)."""
    if isinstance(value, dict) and {"method", "ndim", "config"} <= set(value):
        return build_method(value["method"], value["ndim"], value["config"], device)
    if isinstance(value, str) and value:
        path = Path(value)
        folder = path.parent if path.is_file() else path
        if not (folder / "config.json").exists():
            raise InputError(f"{owner}: {key} = {value}: not a trained model folder (config.json missing)")
        return load_method(folder, device)
    raise InputError(f"{owner}: {key} needs a trained model: give --dep {key}=MODEL_FOLDER")

"""A method built on another trained run (DiffuseReg's first-stage network φ₀, a pretrained
registration network to refine): a config key holds the run's model folder, staged by
`--dep KEY=PATH`, and the method keeps that run's networks among its own, so its model.pt holds
their weights and registration needs no file of the other run.

`attach_trained(owner, key)` loads the run, freezes its networks into owner.nets[key] and
replaces the path in the config by the run's description (method, ndim, config): config.json
then rebuilds the networks, and the owner's model.pt fills their weights.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import InputError
from ..training.trainer import freeze
from .base import Method, build_saved, load_method


def nested_method(value: str | dict | None, device: torch.device, key: str, owner: str) -> Method:
    """The trained method `value` names: a model folder (or its model.pt) when training, or the
    description a saved owner holds (networks untrained until the owner loads its weights)."""
    if isinstance(value, dict) and {"method", "ndim", "config"} <= set(value):
        return build_saved(value, device)
    if isinstance(value, str) and value:
        path = Path(value)
        folder = path.parent if path.is_file() else path
        if not (folder / "config.json").exists():
            raise InputError(f"{owner}: {key} = {value}: not a trained model folder (config.json missing)")
        return load_method(folder, device)
    raise InputError(f"{owner}: {key} needs a trained model: give --dep {key}=MODEL_FOLDER")


def attach_trained(owner: Method, key: str) -> Method:
    """Load the run `owner.cfg.<key>` names, freeze its networks as owner.nets[key] (saved with the
    owner, never trained) and keep its description under `key`; returns the loaded method."""
    sub = nested_method(getattr(owner.cfg, key), owner.device, key, owner.name)
    if sub.ndim != owner.ndim:
        raise InputError(f"{owner.name}: {key} is a {sub.ndim}D model, this run is {owner.ndim}D")
    setattr(owner.cfg, key, sub.describe())
    owner.nets[key] = freeze(sub.nets)
    return sub

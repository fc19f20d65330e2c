"""The method interface and the training set every learned method samples from."""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..io import atomic_path, read_image
from ..registry import Registry

METHODS: Registry["Method"] = Registry("method")


@dataclass
class TrainingSet:
    """Images of the training subjects, one moving and one fixed modality each (may be the same)."""
    subjects: list[str]
    moving: list[np.ndarray]
    fixed: list[np.ndarray]

    @classmethod
    def from_dir(cls, data_dir: str | Path, subjects: list[str], moving_modality: str,
                 fixed_modality: str) -> "TrainingSet":
        data_dir = Path(data_dir)
        mov, fix = [], []
        for s in subjects:
            mov.append(read_image(_find(data_dir, s, moving_modality))[0])
            fix.append(read_image(_find(data_dir, s, fixed_modality))[0])
        shapes = {a.shape for a in mov + fix}
        if len(shapes) != 1:
            raise InputError(f"{data_dir}: training images differ in shape {sorted(shapes)}; preprocess to one shape")
        return cls(subjects, mov, fix)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.moving[0].shape

    def sample(self, rng: np.random.Generator, batch_size: int, inter_subject: bool = True):
        """A batch of (moving, fixed) tensors (B, 1, *S); inter-subject pairs when possible."""
        n = len(self.subjects)
        mov, fix = [], []
        for _ in range(batch_size):
            i = int(rng.integers(n))
            j = i
            if inter_subject and n > 1:
                j = int((i + rng.integers(1, n)) % n)
            mov.append(self.moving[i])
            fix.append(self.fixed[j])
        as_t = lambda xs: torch.from_numpy(np.stack(xs)[:, None]).float()
        return as_t(mov), as_t(fix)


def _find(data_dir: Path, subject: str, modality: str) -> Path:
    path = data_dir / f"{subject}_{modality}.nii.gz"
    if not path.exists():
        raise InputError(f"{path}: missing (subject {subject}, modality {modality})")
    return path


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


class Method(ABC):
    """A registration method: trained by `fit` (a no-op for optimisation-only methods), then
    `register(moving, fixed)` -> displacement (1, D, *S) in voxels, backward map."""

    name: str = "method"

    def __init__(self, ndim: int, config: dict, device: torch.device):
        self.ndim = ndim
        self.config = dict(config)
        self.device = device

    @abstractmethod
    def fit(self, data: TrainingSet, log_path: Path | None = None) -> dict: ...

    @abstractmethod
    def register(self, moving: torch.Tensor, fixed: torch.Tensor) -> torch.Tensor: ...

    @abstractmethod
    def state_dict(self) -> dict: ...

    @abstractmethod
    def load_state_dict(self, state: dict) -> None: ...

    def save(self, outdir: str | Path) -> None:
        outdir = Path(outdir)
        outdir.mkdir(parents=True, exist_ok=True)
        with atomic_path(outdir / "model.pt") as tmp:
            torch.save(self.state_dict(), tmp)
        (outdir / "config.json").write_text(json.dumps(
            {"method": self.name, "ndim": self.ndim, "config": self.config}, indent=2) + "\n")


def check_config(name: str, ndim: int, config: dict, where: str = "") -> None:
    """Raise InputError when `name` is no method or `config` holds a setting the method does not
    have (the planner calls this for every row, so a typo stops the plan, naming `where`)."""
    prefix = f"{where}: " if where else ""
    if name not in METHODS:
        raise InputError(f"{prefix}unknown method '{name}' (known: {', '.join(METHODS.names())})")
    known = METHODS.get(name).settings(ndim)
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise InputError(f"{prefix}unknown setting(s) {', '.join(unknown)} for method {name} "
                         f"(known: {', '.join(sorted(known))})")


def build_method(name: str, ndim: int, config: dict, device: torch.device) -> Method:
    return METHODS.build(name, ndim=ndim, config=config, device=device)


def load_method(model_dir: str | Path, device: torch.device) -> Method:
    model_dir = Path(model_dir)
    cfg_path = model_dir / "config.json"
    if not cfg_path.exists():
        raise InputError(f"{model_dir}: not a trained model folder (config.json missing)")
    cfg = json.loads(cfg_path.read_text())
    method = build_method(cfg["method"], cfg["ndim"], cfg["config"], device)
    method.load_state_dict(torch.load(model_dir / "model.pt", map_location=device, weights_only=True))
    return method

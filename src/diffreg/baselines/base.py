"""What every classical baseline shares: the interface, presets, and `run_baseline`, which reads a
pair, runs one tool, and writes its field and warped images the same way for every method."""
from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator

import numpy as np

from ..errors import InputError
from ..registry import Registry


@dataclass
class Volume:
    """One image as the package reads it: RAS-canonical array and its NIfTI affine."""
    array: np.ndarray
    affine: np.ndarray
    path: Path | None = None

    @property
    def ndim(self) -> int:
        return self.array.ndim


@dataclass
class BaselineResult:
    """A baseline's answer: displacement (D, *S) in voxels on the fixed grid (backward map)."""
    disp: np.ndarray
    registration_s: float          # time of the registration itself (no reading or writing)
    device: str = "cpu"
    extra: dict[str, Any] | None = None


class Baseline:
    """A classical registration method. Subclasses set ``name``, ``presets`` and ``default_preset``
    and implement :meth:`register` and :meth:`version`."""

    name: ClassVar[str] = ""
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    default_preset: ClassVar[str] = ""

    def resolve_config(self, preset: str | None, overrides: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
        preset = preset or self.default_preset
        if preset not in self.presets:
            known = ", ".join(sorted(self.presets))
            raise InputError(f"{self.name}: unknown preset '{preset}' (known: {known})")
        config = dict(self.presets[preset])
        unknown = sorted(set(overrides or {}) - set(config))
        if unknown:
            raise InputError(f"{self.name}: unknown option(s) {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(config))})")
        config.update(overrides or {})
        return preset, config

    def register(self, fixed: Volume, moving: Volume, workdir: Path, threads: int,
                 config: dict[str, Any], seed: int) -> BaselineResult:
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError

    def available(self) -> str | None:
        """None when the tool can run here, else a one-line reason."""
        return None


BASELINES: Registry[Baseline] = Registry("baseline")


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


@contextlib.contextmanager
def scratch_dir(parent: Path, keep: bool = False) -> Iterator[Path]:
    """A working folder for a tool's own files under ``parent``; removed afterwards unless kept."""
    parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=".work-", dir=parent))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)

"""Classical registration baselines (ANTs SyN, NiftyReg, LDDMM, optional FireANTs), run on the
same footing as the learned methods: each returns a voxel-unit backward displacement on the fixed
grid and `run_baseline` writes it with images warped by the project's one warp.

Adding a baseline is one module that subclasses `Baseline` and registers it in `BASELINES`, plus
its line in diffreg/catalog.py, which this imports.
"""
import importlib as _importlib

from ..catalog import BASELINES as _CATALOG, modules as _modules
from .base import BASELINES, Baseline, BaselineResult, Volume
from .runner import run_baseline, load_volumes, get_baseline

for _module in _modules(_CATALOG):                 # each registers its baseline (catalog.py names them)
    _importlib.import_module(f"{__name__}.{_module}")

__all__ = ["BASELINES", "Baseline", "BaselineResult", "Volume", "run_baseline", "load_volumes",
           "get_baseline"]

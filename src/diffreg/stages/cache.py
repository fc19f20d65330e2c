"""A folder of finished stage outputs, keyed by a hash of everything that made them, so a
configuration trains once per machine: $DIFFREG_CACHE/<kind folder>/ (default ~/.cache/diffreg)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from diffreg.io import atomic_path


def cache_dir(folder: str) -> Path:
    return Path(os.environ.get("DIFFREG_CACHE", Path.home() / ".cache" / "diffreg")) / folder


def fetch(cached: Path, out: Path) -> bool:
    """Copy a cached file to `out`; False when there is none."""
    if not cached.is_file():
        return False
    with atomic_path(out) as tmp:
        shutil.copyfile(cached, tmp)
    return True


def store(out: Path, cached: Path) -> bool:
    """Keep a copy of `out` in the cache; a read-only cache must not fail the run."""
    try:
        with atomic_path(cached) as tmp:
            shutil.copyfile(out, tmp)
    except OSError as exc:
        print(f"[cache] not written: {cached} ({exc})", flush=True)
        return False
    return True

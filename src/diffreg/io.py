"""NIfTI in and out, displacement fields on disk, atomic writes and run manifests.

Arrays are returned in the closest canonical (RAS) orientation, so that spatial axes of every
tensor in the package follow one order (docs/conventions.md).
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import nibabel as nib
import numpy as np

from . import __version__
from .errors import InputError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename onto `path` only if the block succeeds,
    so a failed command never leaves a half-written output.

    The temporary file has the final file's name, in a hidden temporary folder beside it: writers
    that record the file name (torch.save names the archive inside model.pt after it, gzip's
    header) then write the same bytes for the same content (byte-reproducible outputs)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    tmp_path = tmp_dir / path.name
    try:
        tmp_path.touch()
        yield tmp_path
        # give the final file the usual umask-based mode
        umask = os.umask(0)
        os.umask(umask)
        if tmp_path.is_file():
            os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def load_nifti(path: str | os.PathLike, canonical: bool = True) -> nib.Nifti1Image:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    try:
        img = nib.load(str(path))
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise InputError(f"{path}: unreadable image ({exc})") from None
    if canonical and len(img.shape) == 2:
        # nibabel cannot reorient a 2D array: give it a singleton third axis (read_image drops it)
        img = nib.Nifti1Image(np.asarray(img.dataobj)[..., None], img.affine, img.header)
    return nib.as_closest_canonical(img) if canonical else img


def read_image(path: str | os.PathLike, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Return (array, affine) in RAS array order; NaN/Inf voxels are an input error."""
    img = load_nifti(path)
    arr = np.asarray(img.dataobj, dtype=dtype)
    if arr.ndim == 3 and arr.shape[-1] == 1:  # 2D images stored as (X, Y, 1)
        arr = arr[..., 0]
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{path}: contains NaN or Inf voxels")
    return arr, img.affine


def read_labels(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    arr, affine = read_image(path, dtype=np.float64)
    return np.rint(arr).astype(np.int16), affine


def write_image(path: str | os.PathLike, arr: np.ndarray, affine: np.ndarray | None = None) -> Path:
    path = Path(path)
    affine = np.eye(4) if affine is None else affine
    with atomic_path(path) as tmp:
        nib.save(nib.Nifti1Image(np.asarray(arr), affine), str(tmp))
    return path


def write_field(path: str | os.PathLike, disp: np.ndarray, affine: np.ndarray | None = None) -> Path:
    """Write a displacement (D, *S) in voxel units as NIfTI (*S, D) float32 (design convention)."""
    disp = np.asarray(disp, dtype=np.float32)
    return write_image(path, np.moveaxis(disp, 0, -1), affine)


def read_field(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a displacement written by `write_field`; returns (D, *S) and the affine."""
    img = load_nifti(path, canonical=False)
    arr = np.asarray(img.dataobj, dtype=np.float32)
    if arr.shape[-1] not in (2, 3) or arr.ndim != arr.shape[-1] + 1:
        raise InputError(f"{path}: not a displacement field (shape {arr.shape})")
    return np.moveaxis(arr, -1, 0), img.affine


def _git_commit() -> str | None:
    try:
        root = Path(__file__).resolve().parents[2]
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except Exception:
        return None


def _versions() -> dict[str, str]:
    from importlib import metadata
    names = ["torch", "monai", "numpy", "nibabel", "antspyx", "diffusers", "pandas"]
    out = {"python": platform.python_version()}
    for n in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[n] = metadata.version(n)
    out["diffreg"] = __version__
    return out


class RunManifest:
    """Collects what a command did and writes run.json: parameters, seed, versions, commit,
    wall time, peak memory and device (docs/conventions.md)."""

    def __init__(self, command: str, params: dict, seed: int | None = None, device: str = "cpu"):
        self.start = time.perf_counter()
        self.data = {
            "command": command,
            "argv": sys.argv[1:],
            "params": {k: (str(v) if isinstance(v, Path) else v) for k, v in params.items()
                       if not k.startswith("_") and not callable(v)},
            "seed": seed,
            "device": device,
            "host": platform.node(),
            "versions": _versions(),
            "git_commit": _git_commit(),
        }

    def update(self, **kv) -> None:
        self.data.update(kv)

    def write(self, path: str | os.PathLike) -> Path:
        self.data["wall_time_s"] = round(time.perf_counter() - self.start, 3)
        # ru_maxrss is in KiB on Linux
        self.data["peak_memory_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        torch = sys.modules.get("torch")  # only if the command used it: importing costs seconds
        if torch is not None:
            self.data.setdefault("threads", torch.get_num_threads())
            if torch.cuda.is_available():
                self.data["peak_cuda_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        path = Path(path)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.data, indent=2, default=str) + "\n")
        return path


def read_csv_rows(path: str, flag: str, columns: tuple[str, ...], required: tuple[str, ...], what: str) -> list[dict]:
    """The rows of the CSV a command flag names (`--pairs`, `--sets`), or one InputError line: the
    file missing, a `required` column missing (all `columns` listed), or no `what` in it."""
    src = Path(path)
    if not src.is_file():
        raise InputError(f"{flag} {path}: file not found")
    with src.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{path}: no column {', '.join(missing)} (columns: {', '.join(columns)})")
        rows = list(reader)
    if not rows:
        raise InputError(f"{path}: no {what}")
    return rows


def load_json_object(path: str | os.PathLike, what: str = "JSON") -> dict:
    """A JSON file holding one object, or one InputError line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        obj = json.loads(path.read_text())
    except ValueError as exc:
        raise InputError(f"{path}: invalid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise InputError(f"{path}: the {what} must be a JSON object, got {type(obj).__name__}")
    return obj

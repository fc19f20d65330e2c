"""Embedded datasets: one stand-in per dataset of the five papers, each made from what ships with
the project (PyPI packages) and each with a known ground truth.

Every stand-in is a module here that registers a :class:`StandIn` in ``STANDINS``. A stand-in
writes, into one folder, the samplesheet layout the matching real adapter
(``diffreg.data.adapters``) writes (same columns, same label values), ``labels.json`` and its
ground truth (true displacements, landmarks) beside them. ``diffreg toy-data --dataset NAME``
runs one; docs/datasets.md says what each is and what it can and cannot speak to.

=========  ==================================================================  =============
name       what                                                                adapter
=========  ==================================================================  =============
brain      head population from MNI + ROBEX anatomy (diffreg.data.toy)         neurite-oasis
oasis      the same heads, ventricles and deep grey matter split out (L/R)    neurite-oasis
acdc       cardiac cine MR phantom, ED -> ES with intermediate frames + fields acdc
camus      apical 2CH/4CH B-mode-like views of the same phantom, ED and ES     camus
echonet    apical 4CH views, LV masks, cine video (Motion-JPEG AVI)            echonet
faces      scikit-image photographs under known "expression" warps + landmarks (RaFD: none)
adni       brain population as T1, PET-like and FA-like images in own spaces   adni
=========  ==================================================================  =============

No knee stand-in: no knee image ships in any installed package (docs/datasets.md).
"""
from __future__ import annotations

import dataclasses
import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ...errors import InputError
from ...io import atomic_path, write_field, write_image
from ...registry import Registry
from ..samplesheet import load_samplesheet, write_samplesheet


@dataclass(frozen=True)
class StandIn:
    """A registered embedded dataset: its config dataclass (fields n_subjects, size, ndim, seed
    plus its own), the generator ``generate(outdir, cfg, absolute_paths) -> samplesheet`` and the
    real adapter whose layout it writes."""
    name: str
    config: type
    generate: Callable[..., pd.DataFrame]
    adapter: str | None
    summary: str
    ndims: tuple[int, ...] = (2, 3)
    # how its evaluation pairs are formed (make-pairs' scheme): within a subject for frame or
    # expression data (the papers pair ED -> ES, neutral -> expression), between subjects otherwise
    pairing: str = "all_ordered"


STANDINS: Registry = Registry("embedded dataset")
_MODULES = ("brain", "oasis", "acdc", "camus", "echonet", "faces", "adni")


def load_all() -> Registry:
    for m in _MODULES:
        importlib.import_module(f"{__name__}.{m}")
    return STANDINS


def get(name: str) -> StandIn:
    load_all()
    if name not in STANDINS:
        raise InputError(f"--dataset {name}: unknown embedded dataset (known: {', '.join(STANDINS.names())})")
    return STANDINS.get(name)


def make_config(standin: StandIn, **given) -> object:
    """The stand-in's config from the options given (None = its default); an option it does not
    take is an InputError naming it."""
    fields = {f.name for f in dataclasses.fields(standin.config)}
    given = {k: v for k, v in given.items() if v is not None}
    unknown = sorted(set(given) - fields)
    if unknown:
        flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
        raise InputError(f"{flags}: not an option of --dataset {standin.name}")
    cfg = standin.config(**given)
    if getattr(cfg, "ndim", None) not in standin.ndims:
        raise InputError(f"--ndim {cfg.ndim}: --dataset {standin.name} is {' or '.join(f'{d}D' for d in standin.ndims)}")
    return cfg


def register(standin: StandIn) -> StandIn:
    STANDINS.register(standin.name)(standin)
    return standin


# ---- helpers shared by the stand-ins -----------------------------------------------------------

class Writer:
    """Writes a stand-in's files into one folder; paths in the samplesheet are file names
    (relative to it) unless `absolute_paths`."""

    def __init__(self, outdir: str | Path, absolute_paths: bool = False):
        self.outdir = Path(outdir)
        self.outdir.mkdir(parents=True, exist_ok=True)
        self.absolute = absolute_paths

    def ref(self, name: str) -> str:
        return str((self.outdir / name).resolve()) if self.absolute else name

    def image(self, name: str, arr: np.ndarray, affine: np.ndarray) -> str:
        write_image(self.outdir / name, np.clip(arr, 0, 1).astype(np.float32), affine)
        return self.ref(name)

    def labels(self, name: str, arr: np.ndarray, affine: np.ndarray) -> str:
        write_image(self.outdir / name, np.asarray(arr).astype(np.uint8), affine)
        return self.ref(name)

    def field(self, name: str, disp: np.ndarray, affine: np.ndarray) -> str:
        write_field(self.outdir / name, disp, affine)
        return self.ref(name)

    def csv(self, name: str, df: pd.DataFrame) -> Path:
        with atomic_path(self.outdir / name) as tmp:
            df.to_csv(tmp, index=False, lineterminator="\n", float_format="%.4f")
        return self.outdir / name

    def finish(self, rows: list[dict], labels: dict[int, str]) -> pd.DataFrame:
        """labels.json, then the samplesheet, checked as the real adapters check theirs (every
        file opened, label values within `labels`)."""
        with atomic_path(self.outdir / "labels.json") as tmp:
            tmp.write_text(json.dumps({str(k): v for k, v in labels.items()}, indent=2) + "\n")
        df = pd.DataFrame(rows)
        check = self.outdir / ".samplesheet.check.csv"
        try:
            write_samplesheet(df, check)
            load_samplesheet(check, check_images=True, label_values=set(labels))
        finally:
            check.unlink(missing_ok=True)
        write_samplesheet(df, self.outdir / "samplesheet.csv")
        return df


def check_common(cfg, min_size: int = 16, max_size: int = 256) -> None:
    if not min_size <= cfg.size <= max_size:
        raise InputError(f"--size {cfg.size}: must be between {min_size} and {max_size}")


def subject_rngs(seed: int, n: int) -> list[np.random.Generator]:
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]

"""The datasets of a launch: the user's samplesheets (validated here, on the head node), the
embedded brain population when something runs on it, the stand-in of every dataset a paper's task
names that no samplesheet gives, and each dataset's own preprocessing flags (--dataset_args)."""
from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from dataclasses import asdict, dataclass
from pathlib import Path

from ..data.samplesheet import image_ndim, load_samplesheet, modalities, read_label_values
from ..data.standins import load_all
from ..errors import InputError
from ..preprocess import flags as preprocess_flags
from .params import fail, split_list

NAME_RE = re.compile(r"[a-z0-9_-]+")
TOY_MODALITIES = ("nbe", "be", "t2")   # the images `diffreg toy-data` writes per subject


@dataclass
class Dataset:
    name: str
    sheet: str | None          # None: made by `diffreg toy-data` (the brain population or a stand-in)
    ndim: int
    standin: bool = False
    modalities: tuple[str, ...] = ()
    splits: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {**asdict(self), "modalities": list(self.modalities), "splits": list(self.splits)}


def validate_sheet(path: str, label_names: str | None = None, allow_missing_labels: bool = False) -> Dataset:
    """`diffreg validate` in-process: every file opened; the dimensionality of its images."""
    import json

    try:
        if label_names:
            values = {int(k) for k in json.loads(Path(label_names).read_text())}
        else:
            values = read_label_values(None, path)
        df = load_samplesheet(path, check_images=True, label_values=values, allow_missing_labels=allow_missing_labels)
    except InputError as exc:   # most messages start with the sheet's path already
        msg = str(exc)
        raise InputError(f"Samplesheet {msg}" if msg.startswith(str(path)) else f"Samplesheet {path}: {msg}") from None
    return Dataset("", path, image_ndim(df), modalities=tuple(modalities(df)),
                   splits=tuple(sorted(set(df["split"]))))


def dataset_args(value) -> dict[str, str]:
    """--dataset_args 'acdc=--spacing 1.5 1.5 3.15;camus:2d=--resize 112 112' -> {name: flags}."""
    out: dict[str, str] = {}
    for item in [s.strip() for s in str(value or "").split(";") if s.strip()]:
        name, sep, flags = item.partition("=")
        name = name.strip()
        if not sep or not re.fullmatch(r"[a-z0-9_-]+(:2d)?", name):
            fail("dataset_args", f"expected NAME=flags;NAME:2d=flags, got '{item}'")
        if name in out:
            fail("dataset_args", f"dataset '{name}' given twice")
        out[name] = flags.strip()
    return out


def check_preprocess_flags(flags: str, where: str) -> None:
    """Flags of `diffreg preprocess` (--preprocess_args, --dataset_args): refused here if preprocess would."""
    parser = argparse.ArgumentParser(prog="diffreg preprocess", add_help=False, exit_on_error=False)
    preprocess_flags.add_arguments(parser)
    try:
        words = shlex.split(flags)
    except ValueError as exc:
        raise InputError(f"{where}: {exc}") from None
    required = ["--subject", "s", "--images", "i", "--outdir", "o"]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            _, extra = parser.parse_known_args(required + words)
    except (argparse.ArgumentError, SystemExit) as exc:
        why = str(exc) if isinstance(exc, argparse.ArgumentError) else (err.getvalue().strip().splitlines() or [""])[-1]
        raise InputError(f"{where}: {why} "
                         "(see: diffreg preprocess --help)") from None
    if extra:
        raise InputError(f"{where}: unknown flag(s) {' '.join(extra)} of diffreg preprocess "
                         "(see: diffreg preprocess --help)")


def standin_datasets(given: list[Dataset], experiments: list, which) -> list[Dataset]:
    """The embedded stand-in of each dataset a task names (test or training data) that no sheet
    gives; its dimensionality: the largest its tasks ask for. `which`: auto, none or NAME,..."""
    choice = "auto" if which is None else str(which).strip()
    if choice == "none" or not experiments:
        return []
    known = set(load_all().names())
    listed = None if choice == "auto" else split_list(choice)
    wanted: dict[str, int] = {}
    for exp in experiments:
        for task in exp.tasks.values():
            for d in (task.dataset, task.train_dataset):
                if d:
                    wanted[d] = max(wanted.get(d, 0), task.ndim)
    have = {d.name for d in given}
    return [Dataset(name, None, nd, standin=True) for name, nd in wanted.items()
            if name != "toy" and name in known and name not in have and (listed is None or name in listed)]


def datasets_2d(experiments: list) -> list[str]:
    """Datasets a 2D task names: a 3D one also gives one slice per subject (or its NAME:2d recipe)."""
    out: list[str] = []
    for exp in experiments:
        for task in exp.tasks.values():
            if task.ndim == 2:
                for d in (task.dataset, task.train_dataset):
                    if d and d not in out:
                        out.append(d)
    return out


def user_datasets(params: dict) -> list[Dataset]:
    """--input (first) and each NAME=sheet of --datasets, each validated."""
    named = split_list(params.get("datasets"))
    out: list[Dataset] = []
    if params.get("input"):
        d = validate_sheet(str(params["input"]), None if named else params.get("label_names"),
                           bool(params.get("allow_missing_labels")))
        d.name = params.get("dataset") or "input"
        for p in ("moving_modality", "fixed_modality"):
            if params.get(p) not in d.modalities:
                fail(p, f"'{params.get(p)}' is no modality of {d.sheet} "
                        f"(image_<modality> columns: {', '.join(d.modalities)})")
        out.append(d)
    for item in named:
        name, sep, sheet = item.partition("=")
        if not sep or not name or not sheet:
            fail("datasets", f"expected NAME=samplesheet.csv, got '{item}'")
        if not NAME_RE.fullmatch(name):
            fail("datasets", f"dataset name '{name}' must be lower-case letters, digits, _ or -")
        if any(d.name == name for d in out):
            fail("datasets", f"dataset '{name}' given twice")
        if not Path(sheet).exists():
            fail("datasets", f"file not found: {sheet}")
        d = validate_sheet(sheet, allow_missing_labels=bool(params.get("allow_missing_labels")))
        d.name = name
        out.append(d)
    return out


__all__ = ["Dataset", "TOY_MODALITIES", "validate_sheet", "dataset_args", "check_preprocess_flags",
           "standin_datasets", "datasets_2d", "user_datasets"]

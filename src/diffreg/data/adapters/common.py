"""Shared pieces of the dataset adapters: split rules from YAML, writing outputs, conversions."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ...errors import InputError
from ...yaml_text import parse_yaml
from ...io import atomic_path, write_image
from ...packages import import_ants
from ..pairs import PairSpec, make_pairs
from ..samplesheet import load_samplesheet, write_samplesheet

REPO_ROOT = Path(__file__).resolve().parents[4]
PAIRS_DIR = REPO_ROOT / "experiments" / "pairs"


@dataclass
class AdapterArgs:
    root: Path | None = None
    csv: Path | None = None
    out: Path = Path("samplesheet.csv")
    split_scheme: str | None = None
    config: Path | None = None
    options: dict = field(default_factory=dict)

    @property
    def workdir(self) -> Path:
        """Folder for converted files (next to the samplesheet)."""
        return Path(self.out).resolve().parent / "data"


def resolve_against(base: Path, value: str | Path) -> Path:
    """A path from a user CSV: absolute as given, relative to the CSV's folder otherwise."""
    return Path(value) if Path(value).is_absolute() else base / value


def dataset_config(name: str, path: Path | None = None) -> dict:
    path = Path(path) if path else PAIRS_DIR / f"{name.replace('-', '_')}.yaml"
    if not path.exists():
        raise InputError(f"{path}: dataset pairing/split file not found")
    return parse_yaml(path.read_text()) or {}


def _too_few(rule: dict, fixed: int, n: int) -> str:
    name = rule.get("_scheme")
    text = f"split counts ({fixed}) {f'of split scheme {name} ' if name else ''}exceed the {n} subjects found"
    fits = sorted(k for k, v in (rule.get("_fixed") or {}).items() if v <= n and k != name)
    if fits:
        return f"{text}; give --split-scheme {' or '.join(fits)}"
    return text + "; no split scheme of this dataset fits (declare one in experiments/pairs/)" if name else text


def split_rule(conf: dict, scheme: str | None) -> tuple[str, dict]:
    splits = conf.get("splits") or {}
    schemes = splits.get("schemes") or {}
    name = scheme or splits.get("default")
    if name not in schemes:
        raise InputError(f"split scheme '{name}' not declared (have {', '.join(schemes) or 'none'})")
    # the other schemes' fixed counts, so that a copy too small for this one is told which fits
    fixed = {n: _fixed_count(r) for n, r in schemes.items()}
    return name, {**schemes[name], "_scheme": name, "_fixed": fixed}


def _fixed_count(rule: dict) -> int:
    return 0 if rule.get("from") == "given" else sum(int(v) for k, v in rule.items()
                                                       if k in ("train", "val", "test") and v != "rest")


def note(message: str) -> None:
    """One informational line on stderr (the CLI's stdout lists the outputs)."""
    print(f"diffreg dataset: {message}", file=sys.stderr, flush=True)


class Skipped(list):
    """(item, reason) of what an adapter left out; each is noted once as it is added and all go
    to skipped.csv beside the samplesheet (write_outputs)."""

    def add(self, item: str, reason: str) -> None:
        note(f"skipped {item}: {reason}")
        self.append((str(item), reason))


def stratified_order(ids: Sequence[str], strata: dict[str, str], seed: int = 0) -> list[str]:
    """`ids` in an order whose every prefix and suffix holds each stratum in proportion: each
    stratum is shuffled (seeded), its k-th of n members gets the position (k + 0.5) / n, and all
    are sorted by position. Counts taken from this order are stratified draws: ACDC's training
    patients come in blocks of 20 per pathology, so a sorted 'last 10' would be one pathology."""
    rng = np.random.default_rng(int(seed))
    by: dict[str, list[str]] = {}
    for i in sorted(ids):
        by.setdefault(str(strata.get(i, "")), []).append(i)
    keyed = []
    for g in sorted(by):
        members = by[g]
        for k, j in enumerate(rng.permutation(len(members))):
            keyed.append(((k + 0.5) / len(members), g, members[j]))
    return [i for _, _, i in sorted(keyed)]


def assign_splits(ids: Sequence[str], rule: dict, given: dict[str, str] | None = None,
                  strata: dict[str, str] | None = None, seed: int = 0) -> dict[str, str]:
    """Subject id -> split under `rule`:

    - ``from: given`` uses `given` (the dataset's own folders / lists / CSV column); then
      ``val_from_train: N`` turns the last N train subjects into val;
    - otherwise counts over the ids: ``train``, ``val``, ``test`` (integers, one may be
      ``rest``); subjects beyond the counts are left out.
    The ids are taken in sorted order or, with `strata` (subject -> group), in stratified_order
    for `seed`. ``groups`` (with `given`) keeps only subjects whose given group is listed, before
    splitting.
    """
    ids = sorted(ids)
    if given is not None and rule.get("groups"):
        ids = [i for i in ids if given.get(i) in rule["groups"]]
    if strata:
        ids = stratified_order(ids, strata, seed)
    if rule.get("from") == "given":
        if given is None:
            raise InputError("this dataset gives no split of its own; declare counts in the split scheme")
        out = {i: given[i] for i in ids}
        bad = sorted({v for v in out.values() if v not in ("train", "val", "test")})
        if bad:
            raise InputError(f"split values {bad} are not train, val or test")
        n_val = int(rule.get("val_from_train", 0))
        if n_val:
            train = [i for i in ids if out[i] == "train"]
            if n_val >= len(train):
                raise InputError(f"split scheme: val_from_train {n_val} must be smaller than the "
                                 f"{len(train)} training subjects found")
            for i in train[len(train) - n_val:]:
                out[i] = "val"
        return out
    counts = {k: rule.get(k, 0) for k in ("train", "val", "test")}
    rest = [k for k, v in counts.items() if v == "rest"]
    if len(rest) > 1:
        raise InputError("only one split may be 'rest'")
    fixed = sum(int(v) for v in counts.values() if v != "rest")
    if fixed > len(ids):
        raise InputError(_too_few(rule, fixed, len(ids)))
    if rest:
        counts[rest[0]] = len(ids) - fixed
    out, k = {}, 0
    for split in ("train", "val", "test"):
        for i in ids[k:k + int(counts[split])]:
            out[i] = split
        k += int(counts[split])
    return out


def write_outputs(df: pd.DataFrame, args: AdapterArgs, conf: dict, labels: dict | None = None,
                  skipped: Sequence[tuple[str, str]] = ()) -> dict:
    """Write the samplesheet (validated), labels.json, one pairs CSV per declared pairing and
    skipped.csv (item, reason; header only when nothing was skipped, so reports can count)."""
    import json

    if df.empty:
        extra = f" ({len(skipped)} item(s) skipped, listed above)" if skipped else ""
        raise InputError(f"{args.root or args.csv}: no subjects found{extra}")
    out = Path(args.out)
    tmp_sheet = out.parent / f".{out.name}.check.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_samplesheet(df, tmp_sheet)
        checked = load_samplesheet(tmp_sheet, check_images=bool(args.options.get("check_images", True)),
                                   label_values=set(labels) if labels else "any")
    finally:
        tmp_sheet.unlink(missing_ok=True)
    if labels:
        with atomic_path(out.parent / "labels.json") as tmp:
            tmp.write_text(json.dumps({str(k): v for k, v in labels.items()}, indent=2) + "\n")
    write_samplesheet(checked, out)
    written = {"samplesheet": str(out)}
    with atomic_path(out.parent / "skipped.csv") as tmp:
        pd.DataFrame(list(skipped), columns=["item", "reason"]).to_csv(tmp, index=False, lineterminator="\n")
    written["skipped"] = str(out.parent / "skipped.csv")
    if skipped:
        note(f"{len(skipped)} item(s) skipped; see {out.parent / 'skipped.csv'}")
    for name, spec in (conf.get("pairings") or {}).items():
        fields = {k: v for k, v in spec.items() if k in PairSpec.__dataclass_fields__}
        try:
            pairs = make_pairs(checked, PairSpec(**fields))
        except InputError as exc:  # a split may be empty under some scheme: say so, keep going
            written[f"pairs_{name}"] = f"skipped: {exc}"
            continue
        path = out.parent / f"pairs_{name}.csv"
        with atomic_path(path) as tmp:
            pairs.to_csv(tmp, index=False, lineterminator="\n")
        written[f"pairs_{name}"] = str(path)
    return written


def save_nifti(path: Path, arr: np.ndarray, affine: np.ndarray | None = None) -> str:
    return str(write_image(path, arr, affine))


def convert_with_ants(src: Path, dst: Path, label: bool = False) -> str:
    """Formats nibabel cannot read (MetaImage .mhd) go through ITK once, to NIfTI."""
    ants = import_ants(1)
    img = ants.image_read(str(src))
    if label:
        img = img.clone("unsigned char") if img.max() < 256 else img.clone("short")
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dst) as tmp:
        ants.image_write(img, str(tmp))
    return str(dst)


def to_nifti(src: Path, workdir: Path, label: bool = False) -> str:
    """Path usable by the pipeline: NIfTI as is; .mgz/.mhd/.png converted into `workdir`."""
    name = src.name
    if name.endswith((".nii.gz", ".nii")):
        return str(src.resolve())
    stem = name.split(".")[0]
    dst = workdir / f"{stem}.nii.gz"
    if name.endswith(".mgz") or name.endswith(".mgh"):
        import nibabel as nib
        img = nib.load(str(src))
        arr = np.asarray(img.dataobj)
        arr = arr.astype(np.int16) if label else arr.astype(np.float32)
        return save_nifti(dst, arr, img.affine)
    if name.endswith(".mhd"):
        return convert_with_ants(src, dst, label)
    if name.lower().endswith((".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")):
        from PIL import Image
        img = np.asarray(Image.open(src).convert("L"))
        # image rows run top to bottom: array axis 0 = x (left-right), axis 1 = y flipped up
        arr = np.ascontiguousarray(img.T[:, ::-1])
        return save_nifti(dst, arr.astype(np.uint8) if label else (arr / 255.0).astype(np.float32))
    raise InputError(f"{src}: unsupported image format")

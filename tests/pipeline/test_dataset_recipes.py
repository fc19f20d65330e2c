"""Every dataset recipe of docs/datasets.md through the real pipeline: the seven public layouts
written small (`diffreg toy-layout`), read by their adapters (`diffreg dataset`), then ONE
`nextflow run main.nf -profile test` with all of them (--datasets), each preprocessed with its
paper's recipe (--dataset_args) and registered on its paper's test pairs.

The main path (--methods) registers only the first dataset, so the registrations come from a
small experiment YAML written here: one task per dataset on its paper's pairing, VoxelMorph for 2
iterations (knee: its DXA and X-ray pools paired in turn, see KNEE_NOTE). Prints the wall time and the per-dataset task time from the
trace (docs/datasets.md, "Acceptance: every recipe through the pipeline")."""
from __future__ import annotations

import re
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import yaml

from diffreg.cli import main
from diffreg.data.layouts import NAMES, write_layout

from .conftest import run_nextflow

# Each paper's recipe (docs/datasets.md, "Preparing them as the papers did") with its shapes scaled
# down to the 32-voxel copies, as (flags, expected preprocessed shape). Scaled: OASIS-3
# 160 192 224 / 8; ACDC DiffuseMorph 1.5 1.5 3.15 mm x 128 128 32 as 4.5 4.5 6.3 mm x 32 32 16
# (in-plane: the copy's own 4.5 mm, where 1.5 mm would resample it to a 96^2 grid; through-plane:
# the paper's 101 mm field of view; 8 slices would be smaller than VoxelMorph's 9-voxel NCC
# window, "input image smaller than kernel size"); CAMUS / EchoNet 112 ->
# 128 / 4; ADNI 1.5 mm x 128 (192 mm) as 6 mm x 32, without --pet-index / --pons-label (the
# stand-in has no brainstem); knee 256 / 8, aligned to the pipeline's reference, the first
# training subject (a DXA: the recipe's "a random DXA").
RECIPES = {
    "neurite-oasis": ("--transform none", (32, 32, 32)),
    "oasis3": ("--transform none --shape 20 24 28", (20, 24, 28)),
    "acdc": ("--transform none --spacing 4.5 4.5 6.3 --shape 32 32 16", (32, 32, 16)),
    "camus": ("--transform none --resize 28 28 --shape 32 32", (32, 32)),
    "echonet": ("--transform none --resize 28 28 --shape 32 32", (32, 32)),
    "adni": ("--transform none --spacing 6 --shape 32 32 32 --intensity percentile --percentiles 0 99.9", (32, 32, 32)),
    "knee": ("--transform Affine --resize 32 32", (32, 32)),
}
# task per dataset: ndim, the paper's pairing (experiments/pairs/<dataset>.yaml), moving -> fixed.
# neurite-oasis has no `pairs:` (its pairing file is neurite_oasis.yaml): its own all-ordered
# be pairs, DGIR's BE -> NBE on test subjects.
TASKS = {
    "neurite-oasis": dict(ndim=3, mods=("be", "nbe")),
    "oasis3": dict(ndim=3, pairing="atlas", pairs="diffusemorph_atlas", mods=("t1", "t1")),
    "acdc": dict(ndim=3, pairing="intra", pairs="diffusemorph_ed_to_es", mods=("ed", "es")),
    "camus": dict(ndim=2, pairing="intra", pairs="ldm_morph_ed_to_es", mods=("ed", "es")),
    "echonet": dict(ndim=2, pairing="intra", pairs="ldm_morph_ed_to_es", mods=("ed", "es")),
    "adni": dict(ndim=3, pairs="m2m_pet_to_t1", mods=("pet", "t1")),
    "knee": dict(ndim=2, pairs="dgir_dxa_to_xray", mods=("dxa", "xray")),
}
# KNEE_NOTE: a knee row holds one image (DXA or X-ray: different people); the training set pairs
# the DXA pool with the X-ray pool in turn (methods/training_set.py), so VoxelMorph trains on it.
SUBJECTS = {"oasis3": 4}  # atlas training needs 2 training subjects (the atlas and one more)


def task_key(name: str) -> str:
    return "t_" + name.replace("-", "_")


def experiment_yaml() -> dict:
    tasks, artifacts = {}, {}
    for name, t in TASKS.items():
        mv, fx = t["mods"]
        tasks[task_key(name)] = {**{k: v for k, v in t.items() if k != "mods"}, "dataset": name,
                                 "train": {"moving": mv, "fixed": fx}, "test": {"moving": mv, "fixed": fx}}
        run = {"name": "vm", "iterations": 2}
        artifacts["a" + task_key(name)[1:]] = {"kind": "table", "title": f"{name} recipe", "columns": ["dice"],
                                               "tasks": {"real": task_key(name)}, "runs": [run]}
    return {"paper": {"name": "Dataset recipes (test)"}, "method": "voxelmorph", "tasks": tasks, "artifacts": artifacts}


def per_dataset_seconds(results: Path) -> dict[str, float]:
    """Summed task realtime per dataset from the trace (tasks are tagged with the dataset, its
    task key or its training run)."""
    trace = pd.read_csv(next((results / "pipeline_info").glob("trace_*.txt")), sep="\t")
    runs = pd.read_csv(results / "pipeline_info/plan/trainings.csv")
    owner = {r.run: r.dataset for r in runs.itertuples()}
    out: dict[str, float] = {}
    for r in trace.itertuples():
        tag = str(r.name)
        hit = [n for n in NAMES if re.search(rf"\({re.escape(n)}[ )]", tag) or task_key(n) in tag
               or owner.get(tag.split("(")[-1].rstrip(")")) == n]
        key = hit[0] if len(hit) == 1 else "shared"
        out[key] = out.get(key, 0.0) + _seconds(str(r.realtime))
    return out


def _seconds(text: str) -> float:
    total = 0.0
    for part in text.split():
        for unit, f in (("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600)):
            if part.endswith(unit) and part[: -len(unit)].replace(".", "").isdigit():
                total += float(part[: -len(unit)]) * f
                break
    return total


def test_every_recipe_on_its_public_layout(tmp_path):
    sheets, strays = {}, {}
    for name in NAMES:
        lay = write_layout(name, tmp_path / "raw" / name, n_subjects=SUBJECTS.get(name, 3), size=32, seed=0)
        sheets[name] = tmp_path / "work" / name / "samplesheet.csv"
        assert main(lay.command(sheets[name])) == 0, name
        strays[name] = lay.strays
    paper = tmp_path / "recipes.yaml"
    paper.write_text(yaml.safe_dump(experiment_yaml(), sort_keys=False))

    start = time.monotonic()
    proc = run_nextflow(tmp_path, "-profile", "test", "--outdir", "results", "--papers", str(paper),
                        "--methods", "none", "--baselines", "none", "--standins", "none",
                        "--train_iterations", "2", "--max_pairs", "2",
                        "--datasets", ",".join(f"{n}={s}" for n, s in sheets.items()),
                        "--dataset_args", ";".join(f"{n}={flags}" for n, (flags, _) in RECIPES.items()))
    wall = time.monotonic() - start
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    results = tmp_path / "results"
    print(f"\n[dataset recipes] nextflow wall time {wall:.0f} s; task seconds per dataset: "
          + ", ".join(f"{k} {v:.0f}" for k, v in sorted(per_dataset_seconds(results).items())))

    metrics = pd.concat(pd.read_csv(p) for p in (results / "experiments/metrics").glob("*.csv"))
    for name, (_, shape) in RECIPES.items():
        dice = metrics[(metrics["dataset"] == name) & (metrics["metric"] == "dice")]
        assert len(dice) and np.isfinite(dice["value"]).all() and dice["value"].between(0, 1).all(), name
        # the recipe's grid: every preprocessed image of the dataset has its shape
        images = [p for p in (results / "preprocessed" / name).rglob("*.nii.gz") if "label" not in p.name]
        assert images and {nib.load(p).shape for p in images} == {shape}, name
    # the adapters' deliberate strays (a _backup folder, an untraced video) are in skipped.csv and
    # reach the report's provenance
    for name, items in strays.items():
        skipped = pd.read_csv(sheets[name].parent / "skipped.csv", keep_default_na=False)
        assert list(skipped["item"]) == items, name
    provenance = (results / "pipeline_info/provenance.json").read_text()
    assert "patient001_backup" in provenance and "0X000000000000FFFF.avi" in provenance
    assert (results / "report/index.html").stat().st_size > 0

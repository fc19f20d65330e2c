"""Every dataset recipe of docs/datasets.md through the real pipeline to its papers' tables: the
public layouts written small (`diffreg toy-layout`; CAMUS with both views), read by their adapters
(`diffreg dataset`), then ONE `nextflow run main.nf -profile test` with all of them (--datasets;
CAMUS as camus-2ch and camus-4ch), each preprocessed with its paper's recipe (--dataset_args) and
registered on its papers' test pairs by the papers' own experiment YAMLs, one or more tables per
dataset (--artifacts: PAPER_TABLES), at the test profile's rows and lengths. Prints the wall time
and the per-dataset task time from the trace (docs/datasets.md, "Acceptance: every recipe through
the pipeline")."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from diffreg.cli import main
from diffreg.data.layouts import write_layout

from .conftest import run_nextflow

# Each paper's recipe (docs/datasets.md, "Preparing them as the papers did") with its shapes scaled
# down to the 32-voxel copies, as (flags, expected preprocessed shape). Scaled: OASIS-3
# 160 192 224 / 8; ACDC DiffuseMorph 1.5 1.5 3.15 mm x 128 128 32 as 4.5 4.5 6.3 mm x 32 32 16
# (in-plane: the copy's own 4.5 mm, where 1.5 mm would resample it to a 96^2 grid; through-plane:
# the paper's 101 mm field of view; 8 slices would be smaller than VoxelMorph's 9-voxel NCC
# window, "input image smaller than kernel size"); ACDC LDM-Morph (its own 2D recipe, `acdc:2d`:
# mid-slice, 112 -> 128) and CAMUS / EchoNet 112 -> 128 / 4; ADNI 1.5 mm x 128 (192 mm) as
# 6 mm x 32, PET pons-normalised (the optional flags), FA skull-stripped by the SynthStrip command
# (a threshold stand-in on PATH); knee 256 / 8, aligned to the pipeline's reference, the first
# training subject (a DXA: the recipe's "a random DXA"). DiffuseReg's ACDC recipe (`--shape` alone)
# is the crop / pad that the OASIS-3 row runs.
ADNI = "--transform none --spacing 6 --shape 32 32 32 --intensity percentile --percentiles 0 99.9"
RECIPES = {
    "neurite-oasis": ("--transform none", (32, 32, 32)),
    "oasis3": ("--transform none --shape 20 24 28", (20, 24, 28)),
    "acdc": ("--transform none --spacing 4.5 4.5 6.3 --shape 32 32 16", (32, 32, 16)),
    "acdc:2d": ("--transform none --extract-slice 2:mid --resize 28 28 --shape 32 32", (32, 32)),
    "camus-2ch": ("--transform none --resize 28 28 --shape 32 32", (32, 32)),
    "camus-4ch": ("--transform none --resize 28 28 --shape 32 32", (32, 32)),
    "echonet": ("--transform none --resize 28 28 --shape 32 32", (32, 32)),
    "adni-pet": (f"{ADNI} --pet-modality pet --pons-label 9", (32, 32, 32)),
    "adni-fa": (f"{ADNI} --skullstrip external --skullstrip-command 'mri_synthstrip -i {{input}} -m {{mask}}'",
                (32, 32, 32)),
    "knee": ("--transform Affine --resize 32 32", (32, 32)),
}
# dataset of the run -> (layout copy, view for the CAMUS adapter)
LAYOUT = {"neurite-oasis": ("neurite-oasis", None), "oasis3": ("oasis3", None), "acdc": ("acdc", None),
          "camus-2ch": ("camus", "2CH"), "camus-4ch": ("camus", "4CH"), "echonet": ("echonet", None),
          "adni-pet": ("adni", None), "adni-fa": ("adni", None), "knee": ("knee", None)}
# the papers' tables each dataset feeds here, as PAPER:ARTIFACT:ROW (each paper's real task on it),
# with the paper's own method as the row (every other row runs in the shared test run, on the
# stand-ins): what is checked here is the recipe, so one learned row per table reaches it, and one
# classical row (SyN on echo) shows a baseline on a recipe's grid. DGIR's knee Table 1 and BE -> NBE
# Table 2; DiffuseMorph's cardiac (Table 2) and atlas brain (Table 3) tables; DiffuseReg's ES -> ED
# Table 1; LDM-Morph's Table 1 on every echo / cardiac dataset (ACDC through its 2D recipe) and
# Table 2 (trained on ECHO, tested on CAMUS-2CH); M2M-Reg's PET -> MRI and FA -> MRI Table 1
# (GradICON with and without the scheme)
PAPER_TABLES = {
    "knee": ["dgir:table1:diffusion_lncc"], "neurite-oasis": ["dgir:table2_be_nbe:dgir_tr_be_nbe"],
    "acdc": ["diffusemorph:table2:diffusemorph", "diffusereg:table1:diffusereg", "ldm_morph:table1_acdc:ldm_morph"],
    "oasis3": ["diffusemorph:table3:diffusemorph"],
    "camus-2ch": ["ldm_morph:table1_camus2ch:ldm_morph", "ldm_morph:table2_camus2ch:ldm_morph"],
    "camus-4ch": ["ldm_morph:table1_camus4ch:ldm_morph"], "echonet": ["ldm_morph:table1_echo:ldm_morph+syn"],
    "adni-pet": ["m2m_reg:table1_pet_mri:gradicon+gradicon_m2m_gcc"],
    "adni-fa": ["m2m_reg:table1_fa_mri:gradicon+gradicon_m2m_gcc"],
}
SUBJECTS = {"oasis3": 4}  # atlas training needs 2 training subjects (the atlas and one more)
NAMES_RUN = list(LAYOUT)


def per_dataset_seconds(results: Path) -> dict[str, float]:
    """Summed task realtime per dataset from the trace: a task is tagged with its dataset, its
    training run or its registration label (the plan says whose data each is)."""
    trace = pd.read_csv(next((results / "pipeline_info").glob("trace_*.txt")), sep="\t")
    plan = results / "pipeline_info/plan"
    owner = {r.run: r.dataset for r in pd.read_csv(plan / "trainings.csv").itertuples()}
    owner.update({r.label: r.dataset for r in pd.read_csv(plan / "registrations.csv").itertuples()})
    out: dict[str, float] = {}
    for r in trace.itertuples():
        tag = str(r.name)
        inner = tag.split("(", 1)[-1].rstrip(")").split(" ")      # EVALUATE: "<paper> <dataset> (N sets)"
        hit = [n for n in NAMES_RUN if n in inner or any(owner.get(t.split("__")[0]) == n for t in inner)]
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


def synthstrip_stand_in(bindir: Path) -> Path:
    """`mri_synthstrip -i IN -m MASK` answered by a threshold mask (SynthStrip is not installed here)."""
    tool = bindir / "mri_synthstrip"
    bindir.mkdir(parents=True, exist_ok=True)
    tool.write_text(f"#!{sys.executable}\nimport sys, nibabel as nib, numpy as np\n"
                    "a = sys.argv[sys.argv.index('-i') + 1]; m = sys.argv[sys.argv.index('-m') + 1]\n"
                    "img = nib.load(a); d = np.asarray(img.dataobj)\n"
                    "nib.save(nib.Nifti1Image((d > d.mean()).astype(np.uint8), img.affine), m)\n")
    tool.chmod(0o755)
    return bindir


def test_every_recipe_on_its_public_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{synthstrip_stand_in(tmp_path / 'bin')}:{os.environ['PATH']}")
    sheets, strays, layouts = {}, {}, {}
    for name, (layout, view) in LAYOUT.items():
        if layout not in layouts:
            layouts[layout] = write_layout(layout, tmp_path / "raw" / layout, n_subjects=SUBJECTS.get(name, 3),
                                           size=32, seed=0)
        lay = layouts[layout]
        sheets[name] = tmp_path / "work" / name / "samplesheet.csv"
        argv = lay.command(sheets[name])
        if view:
            argv[argv.index("--view") + 1] = view
        assert main(argv) == 0, name
        strays[name] = lay.strays

    start = time.monotonic()
    proc = run_nextflow(tmp_path, "-profile", "test", "--outdir", "results",
                        "--papers", "dgir,diffusemorph,diffusereg,ldm_morph,m2m_reg",
                        "--artifacts", ",".join(t for ts in PAPER_TABLES.values() for t in ts),
                        "--methods", "none", "--baselines", "none", "--standins", "none", "--max_pairs", "1",
                        "--datasets", ",".join(f"{n}={s}" for n, s in sheets.items()),
                        "--dataset_args", ";".join(f"{n}={flags}" for n, (flags, _) in RECIPES.items()))
    wall = time.monotonic() - start
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    results = tmp_path / "results"
    print(f"\n[dataset recipes] nextflow wall time {wall:.0f} s; task seconds per dataset: "
          + ", ".join(f"{k} {v:.0f}" for k, v in sorted(per_dataset_seconds(results).items())))

    metrics = pd.concat(pd.read_csv(p) for p in (results / "experiments/metrics").glob("*.csv"))
    for name in LAYOUT:
        # (a label of the dataset's labels.json that the copy lacks scores NaN: absent from both maps)
        dice = metrics[(metrics["dataset"] == name) & (metrics["metric"] == "dice") & (metrics["label"] == "mean")]
        assert len(dice) and np.isfinite(dice["value"]).all() and dice["value"].between(0, 1).all(), name
        # the recipes' grids: every preprocessed image of the dataset has its recipe's shape (ACDC:
        # the volumes of its 3D recipe, and the 2D subjects <id>_2d of its `acdc:2d` recipe)
        want = {shape for key, (_, shape) in RECIPES.items() if key.split(":")[0] == name}
        images = [p for p in (results / "preprocessed" / name).rglob("*.nii.gz") if "label" not in p.name]
        assert images and {nib.load(p).shape for p in images} == want, name
        # each of its papers' tables has a row of ours that ran on this dataset's pairs, beside the paper's
        for sel in PAPER_TABLES[name]:
            paper, artifact = sel.split(":")[:2]
            table = pd.read_csv(results / "experiments" / paper / f"{artifact}.csv").set_index("method")
            ran = table[table["n"].fillna(0) > 0]
            assert len(ran.drop(index="initial", errors="ignore")), (name, sel)
            assert np.isfinite(ran["dice_mean"]).all() and any(c.startswith("paper_") for c in table.columns), (name, sel)
            assert name in set(metrics.loc[metrics["experiment"] == paper, "dataset"]), (name, sel)
    # LDM-Morph Table 2: trained on ECHO, scored on CAMUS-2CH's pairs; its Dice is the LV's (scored_labels)
    plan = results / "pipeline_info/plan"
    runs = pd.read_csv(plan / "trainings.csv").set_index("run")
    regs = pd.read_csv(plan / "registrations.csv")
    cross = regs[regs["label"].str.contains("@echo_to_camus2ch.")]
    assert len(cross) and (cross["dataset"] == "camus-2ch").all()
    assert set(runs.loc[cross["run"], "dataset"]) == {"echonet"}
    camus_dice = metrics[(metrics["dataset"] == "camus-2ch") & (metrics["metric"] == "dice")]
    assert set(camus_dice["label"]) == {"LV endocardium", "mean"}
    # the adapters' deliberate strays (a _backup folder, an untraced video) are in skipped.csv and
    # reach the report's provenance
    for name, items in strays.items():
        skipped = pd.read_csv(sheets[name].parent / "skipped.csv", keep_default_na=False)
        assert list(skipped["item"]) == items, name
    provenance = (results / "pipeline_info/provenance.json").read_text()
    assert "patient001_backup" in provenance and "0X000000000000FFFF.avi" in provenance
    assert (results / "report/index.html").stat().st_size > 0

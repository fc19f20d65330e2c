"""`diffreg toy-layout`: each stand-in copy in its dataset's public layout is read back by the real
adapter (`diffreg dataset`) with the expected subjects, labels and skipped items, and passes
`diffreg validate`."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from diffreg.cli import main
from diffreg.data.adapters.echonet import trace_mask
from diffreg.data.layouts import NAMES, Layout, tracings, write_layout
from diffreg.errors import InputError

# label values each adapter writes from the copy (the stand-ins' 3 tissues / structures)
LABEL_VALUES = {"neurite-oasis": {0, 1, 3, 4}, "oasis3": {0, 2, 3, 4}, "acdc": {0, 1, 2, 3},
                "camus": {0, 1, 2, 3}, "echonet": {0, 1}, "adni": {0, 1, 2, 3, 9}, "knee": {0, 1, 2, 3}}


@pytest.fixture(scope="module")
def copies(tmp_path_factory) -> dict[str, tuple[Layout, Path]]:
    """Every layout written once (3 subjects, 32 voxels a side) and read by its adapter."""
    base = tmp_path_factory.mktemp("layouts")
    out = {}
    for name in NAMES:
        lay = write_layout(name, base / "raw" / name, n_subjects=3, size=32, seed=0)
        sheet = base / "work" / name / "samplesheet.csv"
        assert main(lay.command(sheet)) == 0, name
        out[name] = (lay, sheet)
    return out


@pytest.mark.parametrize("name", NAMES)
def test_adapter_reads_the_copy(copies, name):
    lay, sheet = copies[name]
    df = pd.read_csv(sheet, dtype=str, keep_default_na=False)
    assert len(df) == lay.n_subjects == (4 if name == "knee" else 3)
    assert set(df["split"]) == {"train", "test"}
    skipped = pd.read_csv(sheet.parent / "skipped.csv", keep_default_na=False)
    assert list(skipped["item"]) == lay.strays
    assert len(lay.strays) == (name in ("neurite-oasis", "acdc", "camus", "echonet"))  # where a rule exists
    assert main(["validate", "--input", str(sheet)]) == 0
    values = set()
    for col in [c for c in df.columns if c.startswith("labels")]:
        for p in df[col]:
            if p:
                values |= set(np.unique(np.asarray(nib.load(p).dataobj)).astype(int).tolist())
    assert values == LABEL_VALUES[name]
    # every declared pairing has pairs (the small copies keep a test split of 2)
    pairs = sorted(sheet.parent.glob("pairs_*.csv"))
    assert pairs and all(len(pd.read_csv(p)) >= 1 for p in pairs)


def test_copies_keep_the_public_formats(copies):
    shape = lambda p: nib.load(p).shape  # noqa: E731
    acdc = pd.read_csv(copies["acdc"][1], dtype=str).set_index("subject")
    # 5 cine frames, ED 1 -> ES 5: the mid frames are exactly frames 2, 3, 4 at 0.25, 0.5, 0.75
    assert [acdc.iloc[0][f"frame_mid{k}"] for k in (1, 2, 3)] == ["2", "3", "4"]
    assert [float(acdc.iloc[0][f"time_mid{k}"]) for k in (1, 2, 3)] == [0.25, 0.5, 0.75]
    assert shape(acdc.iloc[0]["image_ed"]) == (32, 32, 8)
    raw = copies["acdc"][0].path
    assert shape(next(raw.glob("training/patient*/*_4d.nii.gz"))) == (32, 32, 8, 5)
    assert "NbFrame: 5" in next(raw.glob("testing/patient*/Info.cfg")).read_text()
    # OASIS-3 from FreeSurfer MGZ, converted; knee from PNG (8-bit grey, 2D)
    assert next(copies["oasis3"][0].path.glob("*/mri/brain.mgz")).exists()
    assert shape(pd.read_csv(copies["oasis3"][1])["image_t1"][0]) == (32, 32, 32)
    knee = pd.read_csv(copies["knee"][1], dtype=str, keep_default_na=False)
    assert shape(knee["image_dxa"][0]) == (32, 32) and shape(knee["labels"][0]) == (32, 32)
    # EchoNet: ED is the traced frame with the larger area, and the tracings rebuild a real LV
    echo = pd.read_csv(copies["echonet"][1])
    for r in echo.itertuples():
        ed, es = (np.asarray(nib.load(p).dataobj).sum() for p in (r.labels_ed, r.labels_es))
        assert ed > es > 20
    assert sorted(copies["camus"][0].path.glob("database_split/*.txt"))
    # ADNI: FreeSurfer aseg values that the adapter merges back into the stand-in's groups
    aseg = np.asarray(nib.load(copies["adni"][0].path / "sub-001" / "aseg.nii.gz").dataobj)
    merged = np.asarray(nib.load(pd.read_csv(copies["adni"][1])["labels"][0]).dataobj)
    assert set(np.unique(aseg)) == {0, 2, 3, 4, 16} and ((aseg == 2) == (merged == 1)).all()
    assert ((aseg == 16) == (merged == 9)).all()            # the brainstem: M2M-Reg's pons reference


def test_tracings_rebuild_the_mask():
    yy, xx = np.mgrid[:40, :32]
    mask = ((yy - 22) / 12.0) ** 2 + ((xx - 15) / 7.0) ** 2 <= 1  # an upright LV-like ellipse
    rows = pd.DataFrame(tracings("v", mask, 3))
    back = trace_mask(rows, mask.shape).astype(bool)
    dice = 2 * (back & mask).sum() / (back.sum() + mask.sum())
    assert dice > 0.97 and rows.iloc[0]["Y2"] - rows.iloc[0]["Y1"] == 25  # long axis: the 25 rows


def test_refuses_a_used_folder_and_too_few_subjects(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f").write_text("")
    with pytest.raises(InputError, match="not empty"):
        write_layout("acdc", tmp_path / "x")
    with pytest.raises(InputError, match="at least 3"):
        write_layout("acdc", tmp_path / "y", n_subjects=2)
    assert main(["toy-layout", "--dataset", "camus", "--outdir", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / "database_nifti" / "patient0003" / "patient0003_2CH_ES_gt.nii.gz").exists()


# docs/datasets.md "Preparing them as the papers did": each row's flags, as written there, on one
# subject of the matching copy (the reference: another subject's first image, as the pipeline
# always hands PREPROCESS one)
RECIPE_ROWS = {"DGIR, Neurite-OASIS": ["neurite-oasis"], "DiffuseMorph, OASIS-3": ["oasis3"],
               "DiffuseMorph, ACDC": ["acdc"], "DiffuseReg, ACDC": ["acdc"], "LDM-Morph, ACDC": ["acdc"],
               "LDM-Morph, CAMUS / EchoNet": ["camus", "echonet"], "M2M-Reg, ADNI PET": ["adni"],
               "M2M-Reg, ADNI PET (pons)": ["adni"],
               "M2M-Reg, ADNI FA": ["adni"], "DGIR, knee": ["knee"]}


def docs_recipes() -> list[tuple[str, str, list[str]]]:
    """(row, layout, flags) of the recipes table; the ADNI FA row is 'the same, plus' its
    SynthStrip flags; the ADNI PET row also runs with its optional pons flags (second code span)."""
    import re
    import shlex
    text = (Path(__file__).resolve().parents[2] / "docs" / "datasets.md").read_text()
    table = text[text.index("| paper / data | preprocessing |"):].split("\n\n")[0]
    flags = {}
    for line in table.splitlines()[2:]:
        row, cell = [c.strip() for c in line.strip("|").split("|", 1)]
        spans = [shlex.split(x.replace("<a random DXA>", "@DXA@")) for x in re.findall(r"`([^`]*)`", cell)]
        flags[row] = spans[0]
        if row == "M2M-Reg, ADNI PET":
            flags[row + " (pons)"] = spans[0] + spans[1]
    flags["M2M-Reg, ADNI FA"] = flags["M2M-Reg, ADNI PET"] + flags["M2M-Reg, ADNI FA"]
    assert set(flags) == set(RECIPE_ROWS), "a recipe row of docs/datasets.md has no test here"
    return [(row, name, flags[row]) for row, names in RECIPE_ROWS.items() for name in names]


@pytest.mark.parametrize("row,name,flags", docs_recipes(), ids=lambda v: v if isinstance(v, str) else None)
def test_each_docs_recipe_runs_as_written(copies, tmp_path, monkeypatch, row, name, flags):
    if "mri_synthstrip" in " ".join(flags):   # a stand-in for SynthStrip on PATH: a threshold mask
        tool = tmp_path / "bin" / "mri_synthstrip"
        tool.parent.mkdir()
        tool.write_text(f"#!{sys.executable}\nimport sys, nibabel as nib, numpy as np\n"
                        "a = sys.argv[sys.argv.index('-i') + 1]; m = sys.argv[sys.argv.index('-m') + 1]\n"
                        "img = nib.load(a); d = np.asarray(img.dataobj)\n"
                        "nib.save(nib.Nifti1Image((d > d.mean()).astype(np.uint8), img.affine), m)\n")
        tool.chmod(0o755)
        monkeypatch.setenv("PATH", f"{tool.parent}:{os.environ['PATH']}")
    _, sheet = copies[name]
    df = pd.read_csv(sheet, dtype=str, keep_default_na=False)
    mods = [c[6:] for c in df.columns if c.startswith("image_")]
    subject = df[df["split"] == "train"].iloc[0]
    images = [(m, subject[f"image_{m}"]) for m in mods if subject[f"image_{m}"]]
    labels = [(c, subject[c]) for c in df.columns if c.startswith("labels") and subject[c]]
    other = df[df["subject"] != subject["subject"]].iloc[0]
    ref = next(other[f"image_{m}"] for m in mods if other[f"image_{m}"])
    flags = [ref if f == "@DXA@" else f for f in flags]
    names = [f"{subject['subject']}_{m}.nii.gz" for m, _ in images] + \
            [f"{subject['subject']}_{c}.nii.gz" for c, _ in labels]
    argv = ["preprocess", "--subject", subject["subject"], "--images", *[p for _, p in images],
            "--labels", *[p for _, p in labels], "--outdir", str(tmp_path), "--names", *names, *flags]
    if "--reference" not in flags:
        argv += ["--reference", ref]
    assert main(argv) == 0, row
    out = nib.load(tmp_path / names[0]).shape
    want = flags[flags.index("--shape") + 1:][:3] if "--shape" in flags else \
        flags[flags.index("--resize") + 1:][:2] if "--resize" in flags else None
    if want is not None:
        want = [int(v) for v in want if v.isdigit()]
        assert list(out[:len(want)]) == want, (row, out)

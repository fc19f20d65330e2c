"""Registration pairs: counts and contents of every scheme, config files, CLI."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from diffreg.cli import main
from diffreg.data.pairs import SCHEMES, PairSpec, load_pairing, make_pairs
from diffreg.data.samplesheet import load_samplesheet
from diffreg.errors import InputError

PAIRS_DIR = Path(__file__).resolve().parents[2] / "experiments" / "pairs"


def sheet(n_train=3, n_test=4, knee=False) -> pd.DataFrame:
    """A samplesheet table as load_samplesheet returns it (no files needed by make_pairs)."""
    rows = []
    for i in range(n_train + n_test):
        sid = f"s{i}"
        row = {"subject": sid, "split": "train" if i < n_train else "test", "labels": f"/d/{sid}_lab.nii.gz",
               "image_be": f"/d/{sid}_be.nii.gz", "image_nbe": f"/d/{sid}_nbe.nii.gz", "prealigned": False}
        if knee:  # one modality per row
            row["image_nbe" if i % 2 else "image_be"] = ""
        rows.append(row)
    return pd.DataFrame(rows)


def test_all_ordered_counts_and_columns():
    p = make_pairs(sheet(), PairSpec("all_ordered", "test", "be", "nbe"))
    assert len(p) == 4 * 3
    assert list(p.columns[:7]) == ["pair_id", "moving_subject", "fixed_subject", "moving_image", "fixed_image",
                                   "moving_labels", "fixed_labels"]
    assert (p["moving_subject"] != p["fixed_subject"]).all()
    assert p["moving_image"].str.endswith("_be.nii.gz").all() and p["fixed_image"].str.endswith("_nbe.nii.gz").all()
    first = p.iloc[0]
    assert first["pair_id"] == "s3_be__s4_nbe" and first["moving_labels"] == "/d/s3_lab.nii.gz"
    assert p["pair_id"].is_unique


def test_all_ordered_disjoint_modalities_is_a_product():
    # knee-like: DXA rows and X-ray rows; 2 x 2 test pairs among s3..s6 (be: s3, s5; nbe: s4, s6)
    p = make_pairs(sheet(knee=True), PairSpec("all_ordered", "test", "be", "nbe"))
    assert sorted(p["moving_subject"] + ">" + p["fixed_subject"]) == ["s3>s4", "s3>s6", "s5>s4", "s5>s6"]


def test_consecutive_intra_atlas():
    df = sheet()
    assert make_pairs(df, PairSpec("consecutive", "test", "be", "be"))["pair_id"].tolist() == [
        "s3_be__s4_be", "s4_be__s5_be", "s5_be__s6_be"]
    intra = make_pairs(df, PairSpec("intra", "test", "be", "nbe"))
    assert (intra["moving_subject"] == intra["fixed_subject"]).all() and len(intra) == 4
    atlas = make_pairs(df, PairSpec("atlas", "test", "be", "be"))  # default atlas: first train subject
    assert len(atlas) == 4 and set(atlas["fixed_subject"]) == {"s0"}
    atlas2 = make_pairs(df, PairSpec("atlas", "test", "be", "be", atlas_subject="s3"))
    assert len(atlas2) == 3 and "s3" not in set(atlas2["moving_subject"])


def test_atlas_image(tmp_path):
    img = tmp_path / "atlas.nii.gz"
    img.write_bytes(b"x")
    p = make_pairs(sheet(), PairSpec("atlas", "test", "be", "be", atlas_image=str(img)))
    assert set(p["fixed_image"]) == {str(img.resolve())} and set(p["fixed_subject"]) == {"atlas"}
    with pytest.raises(InputError, match="atlas file not found"):
        make_pairs(sheet(), PairSpec("atlas", "test", "be", "be", atlas_image=str(tmp_path / "no.nii.gz")))


def test_random_is_seeded_subset():
    df = sheet()
    a = make_pairs(df, PairSpec("random", "test", "be", "be", n_pairs=5, seed=3))
    b = make_pairs(df, PairSpec("random", "test", "be", "be", n_pairs=5, seed=3))
    c = make_pairs(df, PairSpec("random", "test", "be", "be", n_pairs=5, seed=4))
    full = set(make_pairs(df, PairSpec("all_ordered", "test", "be", "be"))["pair_id"])
    assert a.equals(b) and len(a) == 5 and set(a["pair_id"]) <= full
    assert not a["pair_id"].equals(c["pair_id"])
    with pytest.raises(InputError, match="only 12 distinct"):
        make_pairs(df, PairSpec("random", "test", "be", "be", n_pairs=13))


def test_max_pairs_and_errors():
    df = sheet()
    assert len(make_pairs(df, PairSpec("all_ordered", "test", "be", "be", max_pairs=5))) == 5
    with pytest.raises(InputError, match="no column image_t2"):
        make_pairs(df, PairSpec("all_ordered", "test", "t2", "be"))
    with pytest.raises(InputError, match="no pairs"):
        make_pairs(df, PairSpec("all_ordered", "val", "be", "be"))
    with pytest.raises(InputError, match="unknown"):
        make_pairs(df, PairSpec("everything", "test", "be", "be"))


def test_declared_pairings_are_valid():
    files = sorted(PAIRS_DIR.glob("*.yaml"))
    assert {f.stem for f in files} >= {"toy", "neurite_oasis", "oasis3", "acdc", "camus", "echonet", "adni", "knee"}
    for f in files:
        doc = yaml.safe_load(f.read_text())
        assert doc["pairings"], f
        for name, spec in doc["pairings"].items():
            assert spec["scheme"] in SCHEMES, (f, name)
            assert spec["split"] in ("train", "val", "test")
            PairSpec(**spec)  # no unknown keys
        if "splits" in doc:
            assert doc["splits"]["default"] in doc["splits"]["schemes"]


def test_load_pairing(tmp_path):
    cfg = tmp_path / "p.yaml"
    cfg.write_text("pairings:\n  a: {scheme: intra, split: test}\n  b: {scheme: atlas, split: val}\n")
    assert load_pairing(cfg, "b")["scheme"] == "atlas"
    with pytest.raises(InputError, match="choose one with --pairing"):
        load_pairing(cfg, None)
    with pytest.raises(InputError, match="no pairing 'c'"):
        load_pairing(cfg, "c")


def test_cli_on_toy_like_files(tmp_path, capsys):
    import nibabel as nib
    lines = ["subject,split,labels,image_be,image_nbe"]
    for i, sp in enumerate(["train", "test", "test", "test"]):
        lab = np.zeros((4, 4, 4), np.uint8)
        lab[1:3] = 1
        nib.save(nib.Nifti1Image(lab, np.eye(4)), str(tmp_path / f"l{i}.nii.gz"))
        for m in ("be", "nbe"):
            nib.save(nib.Nifti1Image(np.random.default_rng(i).random((4, 4, 4)).astype(np.float32), np.eye(4)),
                     str(tmp_path / f"{m}{i}.nii.gz"))  # not constant: the samplesheet check refuses those
        lines.append(f"t{i},{sp},l{i}.nii.gz,be{i}.nii.gz,nbe{i}.nii.gz")
    (tmp_path / "s.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "o" / "pairs.csv"
    rc = main(["make-pairs", "--input", str(tmp_path / "s.csv"), "--split", "test", "--scheme", "all_ordered",
               "--moving-modality", "be", "--fixed-modality", "nbe", "--out", str(out)])
    assert rc == 0 and "6 pairs" in capsys.readouterr().out
    p = pd.read_csv(out)
    assert len(p) == 6 and Path(p["moving_image"].iloc[0]).is_absolute()
    assert json.loads((out.parent / "run.json").read_text())["n_pairs"] == 6
    # a pairing from the project's toy file, overridden by a flag
    rc = main(["make-pairs", "--input", str(tmp_path / "s.csv"), "--config", str(PAIRS_DIR / "toy.yaml"),
               "--pairing", "be_to_nbe", "--scheme", "consecutive", "--out", str(out)])
    assert rc == 0 and len(pd.read_csv(out)) == 2
    assert load_samplesheet(tmp_path / "s.csv") is not None

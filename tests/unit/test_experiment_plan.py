"""The experiment planner: shared trainings, statuses of rows that cannot run, 2D slices of 3D data."""
import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from diffreg.cli import main
from diffreg.errors import InputError
from diffreg.experiment_plan import Planner, load_experiment, write_plan

DGIR = Path(__file__).resolve().parents[2] / "experiments" / "dgir.yaml"


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_dgir_test_full_plan_shares_trainings_between_artifacts(tmp_path):
    plan = Planner(load_experiment(DGIR), "test_full", "toy", {2, 3}, set()).build()
    uses = {(u.artifact, u.row): u for u in plan.uses}
    # Table 1's Diffusion+LNCC (block 29, t 50) is also Fig. 5b's t = 50 point and a row of Fig. 4
    assert uses[("table1", "diffusion_lncc")].run == uses[("fig5b", "t_50")].run == uses[("fig4", "diffusion_lncc")].run
    # Table 2's two test sets register the same trained network on different pairs
    be_nbe, be_be = uses[("table2_be_nbe", "dgir_tr_be_nbe")].run, uses[("table2_be_be", "dgir_tr_be_nbe")].run
    assert be_nbe != be_be and be_nbe.split("@")[0] == be_be.split("@")[0]
    assert plan.tests[be_nbe]["test_fixed"] == "nbe" and plan.tests[be_be]["test_fixed"] == "be"
    # rows that cannot run say why
    assert uses[("table1", "vgg_lncc")].status == "needs_weights"
    assert "--dgir_vgg_weights" in uses[("table1", "vgg_lncc")].note
    assert uses[("table1", "seg_guided_mmreg")].status == "not_implemented"
    assert uses[("table2_be_nbe", "unigradicon")].status == "needs_weights"
    # every run that trains is used by some row, and the sweeps have one run per value
    used = {u.run.split("@")[0] for u in plan.uses if u.status == "run"}
    assert used == set(plan.runs)
    doc = load_experiment(DGIR)
    assert sum(u.artifact == "fig5a" for u in plan.uses) == len(doc["artifacts"]["fig5a"]["values"]["test_full"])
    # the paper's per-dimension settings and the profile's lengths reach the configs
    cfg = plan.runs[uses[("table2_be_nbe", "dgir_tr_be_nbe")].run.split("@")[0]]["_config"]
    assert cfg["block"] == 11 and cfg["t"] == 50 and cfg["loss"] == "diffusion"
    assert cfg["iterations"] == doc["profiles"]["test_full"]["iterations_3d"]
    assert plan.figures and plan.figures[0]["moving"] == "t2" and plan.figures[0]["fixed"] == "nbe"


def test_given_weights_train_the_row_and_missing_dimensions_skip(tmp_path):
    plan = Planner(load_experiment(DGIR), "test_full", "toy", {2}, {"dgir_vgg_weights"}).build()
    uses = {(u.artifact, u.row): u for u in plan.uses}
    vgg = uses[("table1", "vgg_lncc")]
    assert vgg.status == "run"
    assert plan.runs[vgg.run.split("@")[0]]["_config"]["vgg_weights"] == "vgg_weights.pth"
    assert uses[("table2_be_nbe", "lncc_tr_be_be")].status == "skipped"
    assert not any(r["ndim"] == 3 for r in plan.runs.values())


def test_written_plan_files(tmp_path):
    plan = Planner(load_experiment(DGIR), "test", "toy", {2}, set()).build()
    write_plan(plan, tmp_path)
    runs, tests, uses = (_rows(tmp_path / f) for f in ("runs.csv", "tests.csv", "uses.csv"))
    assert {r["run"] for r in runs} == {t["run"] for t in tests}
    assert all((tmp_path / "configs" / r["config"]).is_file() for r in runs)
    assert {u["run"] for u in uses if u["status"] == "run"} <= {t["label"] for t in tests}
    assert {"artifact": "table1", "row": "mse", "run": "", "status": "skipped",
            "note": "not in the test profile", "param": "", "value": ""} in uses
    cfg = json.loads((tmp_path / "configs" / runs[0]["config"]).read_text())
    assert cfg["iterations"] == load_experiment(DGIR)["profiles"]["test"]["iterations_2d"]
    assert "--iterations" in (tmp_path / "pretrain_args.txt").read_text()


def test_unknown_profile_is_an_input_error():
    with pytest.raises(InputError):
        Planner(load_experiment(DGIR), "quick", "toy", {2}, set())


def test_extract_slices_cuts_every_file_of_a_subject_at_one_index(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    img = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    lab = np.zeros((4, 5, 6), np.uint8)
    lab[:, :, 4] = 2   # most foreground at z = 4
    affine = np.diag([2.0, 2.0, 3.0, 1.0])
    nib.save(nib.Nifti1Image(img, affine), str(src / "sub-1_t2.nii.gz"))
    nib.save(nib.Nifti1Image(lab, affine), str(src / "sub-1_labels.nii.gz"))
    assert main(["extract-slices", "--in-dir", str(src), "--out-dir", str(tmp_path / "out"), "--slice", "2:label"]) == 0
    out = nib.load(str(tmp_path / "out" / "sub-1_2d_t2.nii.gz"))
    np.testing.assert_array_equal(np.asarray(out.dataobj), img[:, :, 4])
    assert out.affine[2, 3] == pytest.approx(12.0)   # the slice's position: 4 x 3 mm
    lab2d = np.asarray(nib.load(str(tmp_path / "out" / "sub-1_2d_labels.nii.gz")).dataobj)
    assert lab2d.shape == (4, 5) and (lab2d == 2).all()

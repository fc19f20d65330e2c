"""experiments/m2m_reg.yaml: every table and figure of M2M-Reg, the paper's numbers as it prints
them, the comparison rows' and M2M-Reg's settings, every M2M-Reg row planned to run (method
m2m_reg), the claims as the paper states them, and a plan on the embedded adni stand-in."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from diffreg.baselines import get_baseline
from diffreg.cli import main
from diffreg.experiments import artifact_claims, load_experiment
from diffreg.planner import Planner

from .paper_numbers import assert_printed

YAML = Path(__file__).resolve().parents[2] / "experiments" / "m2m_reg.yaml"
ARTIFACTS = ["table1_pet_mri", "table1_fa_mri", "table2", "fig1a", "fig1b", "fig3"]
STANDINS = {"adni": {3}}

# The paper's tables as printed (../shared/papers/m2m-reg.md), a second transcription to hold the
# YAML against: means only (no SD), DSC as a fraction, "% |J_phi|<0" in %. Table 1's rows per
# method, read as docs/m2m-reg.md says: TransMorph / CorrMLP (plain, + L_m2m, + L_m2m + L_gcc),
# GradICON (LNCC^2, LNCC, + L_m2m, + L_m2m + L_gcc).
T1_ROWS = ["initial", "syn", "niftyreg", "fireants", "transmorph", "transmorph_m2m", "transmorph_m2m_gcc",
           "corrmlp", "corrmlp_m2m", "corrmlp_m2m_gcc", "gradicon_lncc2", "gradicon", "gradicon_m2m",
           "gradicon_m2m_gcc"]
T1_PET = [(0.462, None), (0.262, 0.000), (0.196, 0.000), (0.223, 1.737), (0.322, 40.572), (0.496, 8.020),
          (0.657, 0.003), (0.237, 43.149), (0.583, 0.422), (0.587, 0.000), (0.088, 5.508), (0.346, 0.041),
          (0.668, 0.000), (0.676, 0.000)]
T1_FA = [(0.424, None), (0.635, 0.000), (0.607, 0.038), (0.420, 0.094), (0.449, 39.534), (0.510, 10.464),
         (0.641, 0.000), (0.064, 50.106), (0.600, 0.003), (0.607, 0.000), (0.632, 0.063), (0.647, 0.008),
         (0.662, 0.000), (0.666, 0.000)]
T2 = {"pre_0": (0.676, 0.000), "pre_1": (0.691, 0.000), "pre_5": (0.709, 0.000), "pre_10": (0.709, 0.000),
      "pre_25": (0.725, 0.000), "pre_50": (0.729, 0.009), "pre_100": (0.730, 0.000)}


def printed(values):
    return {r: {"dice": d, **({} if j is None else {"pct_jac_nonpos": j})} for r, (d, j) in values}


PRINTED = {"table1_pet_mri": printed(zip(T1_ROWS, T1_PET)), "table1_fa_mri": printed(zip(T1_ROWS, T1_FA)),
           "table2": printed(T2.items())}
M2M_ROWS = {"transmorph_m2m", "transmorph_m2m_gcc", "corrmlp_m2m", "corrmlp_m2m_gcc", "gradicon_m2m",
            "gradicon_m2m_gcc"}
LEARNED = {"transmorph", "corrmlp", "gradicon"}
CLASSICAL = {"syn", "niftyreg", "fireants"}


@pytest.fixture(scope="module")
def exp():
    return load_experiment(YAML)


def uses_of(plan):
    return {(u.artifact, u.row): u for u in plan.uses}


def test_every_artifact_in_the_papers_order(exp):
    assert list(exp.artifacts) == ARTIFACTS
    for name, art in exp.artifacts.items():
        assert art.get("title"), name
        if name != "fig1a":                     # the training curves: a drawing, no claim
            assert all(c.get("check") for c in artifact_claims(art)) and artifact_claims(art), name
    # Table 1: "each backbone improves with M2M-Reg", one paired test per backbone (not "the best row")
    for name in ("table1_pet_mri", "table1_fa_mri"):
        assert [c["check"] for c in artifact_claims(exp.artifacts[name])] == [
            {"metric": "dice", "better": f"{b}_m2m_gcc", "than": b} for b in ("transmorph", "corrmlp", "gradicon")]
    # Table 2: a trend over the pre-aligned shares with a margin (the paper's 50 % and 100 % differ by 0.001)
    (t2,) = artifact_claims(exp.artifacts["table2"])
    assert t2["check"]["trend"] == ["pre_0", "pre_1", "pre_5", "pre_10", "pre_25", "pre_50", "pre_100"]
    assert 0.001 < t2["check"]["margin"] <= 0.01
    # Fig. 1a: the curves of a stage that trains GradICON without and with M2M-Reg
    fig1a = exp.artifacts["fig1a"]
    assert fig1a["function"] == "m2m_reg.training_curves" and fig1a["settings"] == {"curves": {"stage": "fig1_curves"}}
    assert exp.stages["fig1_curves"]["kind"] == "m2m_training_curves"


@pytest.mark.parametrize("table", sorted(PRINTED))
def test_the_papers_numbers_as_printed(exp, table):
    assert_printed(exp.paper_rows()[table], PRINTED[table], table)
    assert exp.paper_columns()[table] == ["dice", "pct_jac_nonpos"]


def test_the_reading_of_the_flattened_table1(exp):
    """The relations that support the row reading of docs/m2m-reg.md."""
    p = exp.paper_rows()
    for t in ("table1_pet_mri", "table1_fa_mri"):
        d = {r: v["dice"] for r, v in p[t].items()}
        for base in ("transmorph", "corrmlp", "gradicon"):   # + L_m2m improves, + L_gcc further
            assert d[base] < d[f"{base}_m2m"] <= d[f"{base}_m2m_gcc"], (t, base)
        # "its effect was less pronounced in GradICON": < 0.01 DSC and no folding to remove there
        # (0.000 already with L_m2m alone), against TransMorph's > 0.1 DSC and 8-10 % folding
        j = {r: v["pct_jac_nonpos"] for r, v in p[t].items() if "pct_jac_nonpos" in v}
        assert d["gradicon_m2m_gcc"] - d["gradicon_m2m"] < 0.01 < 0.1 < d["transmorph_m2m_gcc"] - d["transmorph_m2m"]
        assert j["gradicon_m2m"] == j["gradicon_m2m_gcc"] == 0 and j["transmorph_m2m"] > 8
        assert max(d, key=d.get) == "gradicon_m2m_gcc"        # the claims' winner
    # Table 2's unsupervised column is GradICON + L_m2m + L_gcc of Table 1 (PET -> MRI)
    assert p["table2"]["pre_0"] == p["table1_pet_mri"]["gradicon_m2m_gcc"]
    # the text: "+5.4 %p" with all pairs pre-aligned, "+1.5 %p" with 3 pairs
    assert p["table2"]["pre_100"]["dice"] - p["table2"]["pre_0"]["dice"] == pytest.approx(0.054)
    assert p["table2"]["pre_1"]["dice"] - p["table2"]["pre_0"]["dice"] == pytest.approx(0.015)
    # the abstract's "up to 2x higher DSC than prior methods" (PET: best plain learned row GradICON)
    assert p["table1_pet_mri"]["gradicon_m2m_gcc"]["dice"] / p["table1_pet_mri"]["gradicon"]["dice"] == \
        pytest.approx(2, rel=0.03)


def test_the_comparison_rows_carry_the_papers_settings(exp):
    plan = Planner([exp], STANDINS, profile="full").build()
    uses = uses_of(plan)
    cfg = lambda a, r: plan.trainings[uses[(a, r)].label.split("@")[0]]["_config"]
    icon_lncc = {"window": "gaussian", "sigma": 5.0, "size": 21, "border": "zeros", "eps": 1e-5, "eps_form": "relu"}
    for task in ("table1_pet_mri", "table1_fa_mri"):
        for backbone in ("transmorph", "corrmlp"):
            assert cfg(task, backbone) == {"backbone": backbone, "similarity": "lncc", "similarity_kwargs": icon_lncc,
                                           "regulariser": "diffusion", "lambda_reg": 0.062, "lr": 5e-5,
                                           "batch_size": 2, "iterations": 50000}
        assert cfg(task, "gradicon") == {"lmbda": 1.5, "icon_loss": "sparse", "lr": 5e-5, "batch_size": 8,
                                         "iterations": 50000}
        assert plan.trainings[uses[(task, "gradicon")].label.split("@")[0]]["method"] == "gradicon"
        for tool in CLASSICAL:
            missing = get_baseline(tool).available()     # FireANTs is optional: skipped, saying why
            if missing:
                assert (uses[(task, tool)].status, uses[(task, tool)].note) == ("skipped", missing)
            else:
                assert uses[(task, tool)].label.startswith(f"{tool}-m2m_reg@")
    # the paper's lambda 1000 on [0, 1] maps, on voxel displacements at 128^3
    assert 1000 / 127 ** 2 == pytest.approx(0.062, rel=1e-3)
    # PET and FA train and test on their own modalities and pairings
    regs = {r["label"]: r for r in plan.registrations.values()}
    pet, fa = regs[uses[("table1_pet_mri", "gradicon")].label], regs[uses[("table1_fa_mri", "gradicon")].label]
    assert (pet["moving"], pet["fixed"], pet["pairs"]) == ("pet", "t1", "adni/m2m_pet_to_t1")
    assert (fa["moving"], fa["fixed"], fa["pairs"]) == ("fa", "t1", "adni/m2m_fa_to_t1")
    trains = {(t["train_moving"], t["train_fixed"]) for t in plan.trainings.values()}
    assert trains == {("pet", "t1"), ("fa", "t1")}
    no_fireants = bool(get_baseline("fireants").available())      # its two registration sets skipped
    assert len(plan.trainings) == 24 and len(plan.registrations) == 30 - 2 * no_fireants   # 9 + 6 Table 2 on PET, 9 on FA


def test_the_presets_lncc_is_gradicons():
    """The TransMorph / CorrMLP rows' LNCC is the one diffreg's gradicon trains with (ICON's, sigma 5)."""
    import torch
    from diffreg.losses import build_similarity
    from diffreg.methods.gradicon import icon_lncc
    kwargs = load_experiment(YAML).losses["transmorph_m2m_base"]["similarity_kwargs"]
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(1, 1, 16, 16, 16, generator=g), torch.rand(1, 1, 16, 16, 16, generator=g)
    assert build_similarity("lncc", **kwargs).similarity(a, b).item() == pytest.approx(
        icon_lncc(5.0).similarity(a, b).item(), rel=1e-6)


M2M_SETTINGS = {   # row -> (backbone, lambda_reg, lambda_gcc, batch): paper Sec. 2.5 and 3
    "transmorph_m2m": ("transmorph", 0.01, 0, 2), "transmorph_m2m_gcc": ("transmorph", 0.01, 1, 2),
    "corrmlp_m2m": ("corrmlp", 0.01, 0, 2), "corrmlp_m2m_gcc": ("corrmlp", 0.01, 1, 2),
    "gradicon_m2m": ("gradicon", 0.5, 0, 8), "gradicon_m2m_gcc": ("gradicon", 0.5, 0.1, 8)}
SHARES = {"pre_0": 0.0, "pre_1": 0.01, "pre_5": 0.05, "pre_10": 0.10, "pre_25": 0.25, "pre_50": 0.5, "pre_100": 1.0}


@pytest.mark.parametrize("profile", ["test", "test_full", "full"])
def test_m2m_reg_rows_run_with_the_papers_settings(exp, profile):
    plan = Planner([exp], STANDINS, profile=profile).build()
    uses = uses_of(plan)
    assert not any(u.status == "not_implemented" and (u.row in M2M_ROWS or u.artifact == "table2") for u in plan.uses)
    training = lambda a, r: plan.trainings[uses[(a, r)].label.split("@")[0]]    # noqa: E731
    for t in ("table1_pet_mri", "table1_fa_mri"):
        for row, (backbone, lam, gcc, batch) in M2M_SETTINGS.items():
            if uses[(t, row)].status != "run":
                assert profile == "test" and uses[(t, row)].status == "skipped"
                continue
            tr = training(t, row)
            c = tr["_config"]
            assert tr["method"] == "m2m_reg"
            assert (c["backbone"], c["lambda_reg"], c["lambda_gcc"], c["lr"]) == (backbone, lam, gcc, 5e-5)
            assert c["batch_size"] == (batch if profile == "full" else 1)
            assert c.get("width", "paper") == ("paper" if profile == "full" else "small")
    # Table 2: every share runs, within GradICON, the unsupervised row is Table 1's full objective
    for row, share in SHARES.items():
        if profile == "test" and row not in ("pre_0", "pre_100"):   # the pipeline test's time
            assert uses[("table2", row)].status == "skipped"
            continue
        assert uses[("table2", row)].status == "run", (profile, row)
        c = training("table2", row)["_config"]
        assert c.get("prealigned_fraction", 0.0) == share and c["backbone"] == "gradicon"
    assert uses[("table2", "pre_0")].label == uses[("table1_pet_mri", "gradicon_m2m_gcc")].label
    # Fig. 1a: one stage on the PET training subjects, drawn by the figure function
    (stage,) = plan.stages.values()
    assert stage["kind"] == "m2m_training_curves" and stage["data"] == "yes"
    (fig,) = plan.figures.values()
    assert fig["function"] == "m2m_reg.training_curves" and (fig["moving"], fig["fixed"]) == ("pet", "t1")
    # the comparison row GradICON + squared LNCC stays not implemented (no M2M-Reg row)
    if profile != "test":
        assert uses[("table1_pet_mri", "gradicon_lncc2")].status == "not_implemented"


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_plan_on_the_standin_through_the_command_line(tmp_path):
    out = tmp_path / "plan"
    assert main(["plan", "--papers", str(YAML), "--ndims", "adni=3", "--profile", "test", "--out", str(out)]) == 0
    trainings = read_csv(out / "trainings.csv")
    methods = sorted((t["method"], t["train_moving"]) for t in trainings)
    assert methods.count(("gradicon", "pet")) == methods.count(("gradicon", "fa")) == 1
    assert ("voxelmorph", "pet") not in methods                          # TransMorph, CorrMLP alone: test_full
    assert methods.count(("m2m_reg", "fa")) == 1 and methods.count(("m2m_reg", "pet")) == 4   # 3 + Table 2's 100 %
    for t in trainings:   # short: 5 iterations, batch 1, one tallUNet2 step (the stand-in is 32^3)
        cfg = json.loads((out / "configs" / t["config"]).read_text())
        assert (cfg["iterations"], cfg["batch_size"]) == (5, 1)
        if t["method"] == "gradicon":
            assert (cfg["levels"], cfg["lmbda"]) == (0, 1.5)
        if t["method"] == "m2m_reg":
            assert (cfg["width"], cfg["subject_draw"]) == ("small", "repeat")
    regs = read_csv(out / "registrations.csv")
    assert {(r["kind"], r["moving"], r["fixed"], r["pairs"]) for r in regs} == {
        ("learned", "fa", "t1", "adni/m2m_fa_to_t1"), ("learned", "pet", "t1", "adni/m2m_pet_to_t1")}
    assert len(regs) == len(trainings)
    uses = read_csv(out / "uses.csv")
    status = {(u["artifact"], u["row"]): u["status"] for u in uses}
    assert status[("table1_pet_mri", "gradicon")] == status[("table1_fa_mri", "gradicon")] == "run"
    assert status[("table1_pet_mri", "gradicon_m2m_gcc")] == "run"
    assert status[("table1_pet_mri", "syn")] == "skipped"                 # not in the test profile
    assert status[("fig1b", "gradicon")] == "run"
    assert status[("fig3", "gradicon (table1_fa_mri)")] == "run"
    assert {u["status"] for u in uses} == {"run", "skipped"}
    assert {u["artifact"] for u in uses} == set(ARTIFACTS)


def test_test_full_runs_every_row_but_fireants_and_lncc2(exp):
    plan = Planner([exp], STANDINS, profile="test_full").build()
    ran = {u.row for u in plan.uses if u.status == "run" and u.artifact == "table1_pet_mri"}
    assert ran == (LEARNED | CLASSICAL | M2M_ROWS) - {"fireants"}
    cfgs = [t["_config"] for t in plan.trainings.values()]
    assert all(c["iterations"] == 300 and c["batch_size"] == 1 for c in cfgs)
    assert all(("levels" in c) == (t["method"] in ("gradicon", "m2m_reg")) for c, t in zip(cfgs, plan.trainings.values()))


def test_without_adni_every_artifact_says_why(exp):
    plan = Planner([exp], {"toy": {2, 3}}, profile="test").build()
    notes = {u.artifact: u.note for u in plan.uses if u.status == "skipped"
             and u.artifact in ("table1_pet_mri", "table1_fa_mri") and u.row == "gradicon"}
    assert notes == {"table1_pet_mri": "needs dataset adni-pet", "table1_fa_mri": "needs dataset adni-fa"}


def test_real_pet_and_fa_sheets_are_two_datasets(exp):
    """The PET-MRI and FA-MRI sets are different subjects (300 / 50, 230 / 50): one samplesheet per
    split scheme, given as adni-pet and adni-fa, both reading experiments/pairs/adni.yaml."""
    plan = Planner([exp], {"adni-pet": {3}, "adni-fa": {3}}, profile="test").build()
    regs = {r["label"]: r for r in plan.registrations.values()}
    uses = {(u.artifact, u.row): u for u in plan.uses}
    pet, fa = regs[uses[("table1_pet_mri", "gradicon")].label], regs[uses[("table1_fa_mri", "gradicon")].label]
    assert (pet["dataset"], pet["pairs"]) == ("adni-pet", "adni/m2m_pet_to_t1")
    assert (fa["dataset"], fa["pairs"]) == ("adni-fa", "adni/m2m_fa_to_t1")
    assert {t["dataset"] for t in plan.trainings.values()} == {"adni-pet", "adni-fa"}

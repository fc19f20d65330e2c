"""experiments/m2m_reg.yaml: every table and figure of M2M-Reg, the paper's numbers as it prints
them, the comparison rows' and M2M-Reg's settings, every row planned to run in every profile (the
short ones at tiny size), the claims as the paper states them, and a plan on the embedded adni
stand-in."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from diffreg.baselines import get_baseline
from diffreg.cli import main
from diffreg.experiments import load_experiment
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
LEARNED = {"transmorph", "corrmlp", "gradicon", "gradicon_lncc2"}
CLASSICAL = {"syn", "niftyreg", "fireants"}
FIREANTS_MISSING = get_baseline("fireants").available()      # an optional dependency: its reason, or None


@pytest.fixture(scope="module")
def exp():
    return load_experiment(YAML)


def uses_of(plan):
    return {(u.artifact, u.row): u for u in plan.uses}


def test_every_artifact_in_the_papers_order(exp):
    assert list(exp.artifacts) == ARTIFACTS
    for name, art in exp.artifacts.items():
        assert art.title, name
        if name != "fig1a":                     # the training curves: a drawing, no claim
            assert all(c.check for c in art.all_claims) and art.all_claims, name
    # Table 1: "each backbone improves with M2M-Reg", one paired test per backbone (not "the best row")
    for name in ("table1_pet_mri", "table1_fa_mri"):
        assert [c.check for c in exp.artifacts[name].all_claims] == [
            {"metric": "dice", "better": f"{b}_m2m_gcc", "than": b} for b in ("transmorph", "corrmlp", "gradicon")]
    # Table 2: a trend over the pre-aligned shares with a margin (the paper's 50 % and 100 % differ by 0.001)
    (t2,) = exp.artifacts["table2"].all_claims
    assert t2.check["trend"] == ["pre_0", "pre_1", "pre_5", "pre_10", "pre_25", "pre_50", "pre_100"]
    assert 0.001 < t2.check["margin"] <= 0.01
    # Fig. 1a: the curves of a stage that trains GradICON without and with M2M-Reg
    fig1a = exp.artifacts["fig1a"]
    assert fig1a.function == "m2m_reg.training_curves" and fig1a.settings == {"curves": {"stage": "fig1_curves"}}
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
        assert cfg(task, "gradicon") == {"lambda_reg": 1.5, "icon_loss": "sparse", "lr": 5e-5, "batch_size": 8,
                                         "iterations": 50000}
        # Table 1's first GradICON row: the same with multiGradICON's LNCC^2 (ICON's SquaredLNCC)
        assert cfg(task, "gradicon_lncc2") == {**cfg(task, "gradicon"), "similarity": "lncc_squared"}
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
    no_fireants = bool(FIREANTS_MISSING)                          # its two registration sets skipped
    assert len(plan.trainings) == 26 and len(plan.registrations) == 32 - 2 * no_fireants   # 10 + 6 Table 2 on PET, 10 on FA


def test_gradicon_lncc_squared_is_icons_squared_lncc():
    """gradicon's `similarity: lncc_squared` is ICON's SquaredLNCC, mean(1 - cc^2) with its Gaussian
    window (sigma 5, 21 taps, zero padding) and relu(var) + 1e-5, written out here by hand."""
    import torch
    import torch.nn.functional as F
    from diffreg.methods.gradicon import icon_lncc
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(1, 1, 24, 24, generator=g), torch.rand(1, 1, 24, 24, generator=g)
    x = torch.arange(21, dtype=torch.float64) - 10
    k = torch.exp(-x ** 2 / (2 * 5.0 ** 2))
    k = (k / k.sum()).float()
    blur = lambda t: F.conv2d(F.conv2d(t, k.view(1, 1, 21, 1), padding=(10, 0)), k.view(1, 1, 1, 21), padding=(0, 10))  # noqa: E731
    cc = (blur(a * b) - blur(a) * blur(b)) / torch.sqrt((torch.relu(blur(a * a) - blur(a) ** 2) + 1e-5)
                                                         * (torch.relu(blur(b * b) - blur(b) ** 2) + 1e-5))
    squared = torch.mean(1 - cc ** 2).item()
    assert 1 - icon_lncc(5.0, squared=True).similarity(a, b).item() == pytest.approx(squared, rel=1e-5)
    assert 1 - icon_lncc(5.0).similarity(a, b).item() == pytest.approx(torch.mean(1 - cc).item(), rel=1e-5)
    assert abs(squared - torch.mean(1 - cc).item()) > 0.1      # the two are different losses


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
    assert not any(u.status == "not_implemented" for u in plan.uses)
    training = lambda a, r: plan.trainings[uses[(a, r)].label.split("@")[0]]    # noqa: E731
    for t in ("table1_pet_mri", "table1_fa_mri"):
        for row, (backbone, lam, gcc, batch) in M2M_SETTINGS.items():
            assert uses[(t, row)].status == "run", (profile, t, row)
            tr = training(t, row)
            c = tr["_config"]
            assert tr["method"] == "m2m_reg"
            assert (c["backbone"], c["lambda_reg"], c["lambda_gcc"], c["lr"]) == (backbone, lam, gcc, 5e-5)
            assert c["batch_size"] == (batch if profile == "full" else 1)
            assert c.get("width", "paper") == ("paper" if profile == "full" else "small")
    # Table 2: every share runs, within GradICON, the unsupervised row is Table 1's full objective
    for row, share in SHARES.items():
        assert uses[("table2", row)].status == "run", (profile, row)
        c = training("table2", row)["_config"]
        assert c.get("prealigned_fraction", 0.0) == share and c["backbone"] == "gradicon"
    assert uses[("table2", "pre_0")].label == uses[("table1_pet_mri", "gradicon_m2m_gcc")].label
    # Fig. 1a: one stage on the PET training subjects, drawn by the figure function
    (stage,) = plan.stages.values()
    assert stage["kind"] == "m2m_training_curves" and stage["data"] == "yes"
    (fig,) = plan.figures.values()
    assert fig["function"] == "m2m_reg.training_curves" and (fig["moving"], fig["fixed"]) == ("pet", "t1")
    # every row of both tables runs (FireANTs where installed), the short profiles every network small
    for t in ("table1_pet_mri", "table1_fa_mri"):
        for row in LEARNED | CLASSICAL | M2M_ROWS:
            u = uses[(t, row)]
            if row == "fireants" and FIREANTS_MISSING:
                assert (u.status, u.note) == ("skipped", FIREANTS_MISSING)
            else:
                assert u.status == "run", (profile, t, row)
    for tr in plan.trainings.values():
        assert tr["_config"].get("width", "paper") == ("paper" if profile == "full" else "small"), tr["run"]


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_plan_on_the_standin_through_the_command_line(tmp_path):
    out = tmp_path / "plan"
    assert main(["plan", "--papers", str(YAML), "--ndims", "adni=3", "--profile", "test", "--out", str(out)]) == 0
    trainings = read_csv(out / "trainings.csv")
    methods = sorted((t["method"], t["train_moving"]) for t in trainings)
    # per task: GradICON with LNCC and LNCC^2, TransMorph and CorrMLP alone, 6 M2M-Reg rows; PET: Table 2's 6 shares > 0
    for moving in ("pet", "fa"):
        assert methods.count(("gradicon", moving)) == methods.count(("voxelmorph", moving)) == 2
    assert methods.count(("m2m_reg", "fa")) == 6 and methods.count(("m2m_reg", "pet")) == 6 + 6
    for t in trainings:   # short: 2 iterations, batch 1, tiny networks, one tallUNet2 step (the stand-in is 32^3)
        cfg = json.loads((out / "configs" / t["config"]).read_text())
        assert (cfg["iterations"], cfg["batch_size"], cfg["width"]) == (2, 1, "small")
        if t["method"] == "gradicon":
            assert (cfg["levels"], cfg["lambda_reg"]) == (0, 1.5)
        if t["method"] == "m2m_reg":
            assert (cfg["levels"], cfg["subject_draw"]) == (0, "repeat")
    regs = read_csv(out / "registrations.csv")
    assert {(r["kind"], r["moving"], r["fixed"], r["pairs"]) for r in regs} == {
        (kind, m, "t1", f"adni/m2m_{m}_to_t1") for kind in ("learned", "classical") for m in ("pet", "fa")}
    classical = [r["method"] for r in regs if r["kind"] == "classical"]
    assert sorted(classical) == sorted(["syn", "niftyreg"] * 2 + ([] if FIREANTS_MISSING else ["fireants"] * 2))
    assert len(regs) == len(trainings) + len(classical)
    uses = read_csv(out / "uses.csv")
    status = {(u["artifact"], u["row"]): u["status"] for u in uses}
    skipped = {k for k, v in status.items() if v != "run"}
    assert skipped == ({(t, "fireants") for t in ("table1_pet_mri", "table1_fa_mri")} if FIREANTS_MISSING else set())
    assert status[("fig1b", "gradicon")] == "run"
    assert status[("fig3", "gradicon (table1_fa_mri)")] == "run"
    assert {u["artifact"] for u in uses} == set(ARTIFACTS)


@pytest.mark.parametrize("profile, iterations", [("test", 2), ("test_full", 300)])
def test_short_profiles_run_every_row_at_tiny_size(exp, profile, iterations):
    plan = Planner([exp], STANDINS, profile=profile).build()
    for table in ("table1_pet_mri", "table1_fa_mri"):
        ran = {u.row for u in plan.uses if u.status == "run" and u.artifact == table}
        assert ran == (LEARNED | CLASSICAL | M2M_ROWS) - ({"fireants"} if FIREANTS_MISSING else set())
    assert {u.row for u in plan.uses if u.status == "run" and u.artifact == "table2"} == set(SHARES)
    assert len(plan.trainings) == 26
    cfgs = [t["_config"] for t in plan.trainings.values()]
    assert all(c["iterations"] == iterations and c["batch_size"] == 1 and c["width"] == "small" for c in cfgs)
    assert all(("levels" in c) == (t["method"] in ("gradicon", "m2m_reg")) for c, t in zip(cfgs, plan.trainings.values()))


WIDER = {"transmorph": {"embed_dim": 24}, "corrmlp": {"dec_channels": 8}, "gradicon": {"up": [8, 8, 8, 12, 12]}}


@pytest.mark.parametrize("method, backbone", [("voxelmorph", "transmorph"), ("voxelmorph", "corrmlp"),
                                              ("gradicon", "gradicon"), ("m2m_reg", "transmorph"),
                                              ("m2m_reg", "corrmlp"), ("m2m_reg", "gradicon")])
def test_width_small_shrinks_every_backbone_of_the_tables(method, backbone):
    """`width: small` (the short profiles) builds each row's network with nets.small's widths under
    its own backbone_kwargs (which win); paper widths otherwise; an unknown width is refused."""
    import torch
    from diffreg.errors import InputError
    from diffreg.methods import build_method
    cpu = torch.device("cpu")
    cfg = {**({} if method == "gradicon" else {"backbone": backbone}),
           **({} if method == "voxelmorph" else {"levels": 0})}
    size = lambda **kw: sum(p.numel() for p in build_method(method, 3, {**cfg, **kw}, cpu).nets.parameters())  # noqa: E731
    small, paper = size(width="small"), size()
    assert small < paper / 3 and small < 1.3e6, (small, paper)
    assert size(width="small", backbone_kwargs=WIDER[backbone]) > small
    with pytest.raises(InputError, match="width"):
        size(width="tiny")


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

"""experiments/diffusemorph.yaml: all ten artifacts, the paper's numbers as it prints them, and a
plan on the embedded stand-ins for the test profiles."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from diffreg.cli import main
from diffreg.experiments import load_experiment
from diffreg.planner import Planner

from .paper_numbers import assert_printed

YAML = Path(__file__).resolve().parents[2] / "experiments" / "diffusemorph.yaml"
ARTIFACTS = ["table1", "table2", "table3", "table4", "fig5", "fig6", "fig7", "fig8", "fig9", "fig10"]
STANDINS = {"toy": {2, 3}, "faces": {2}, "acdc": {3}, "oasis": {3}}

# The paper's tables as printed (the paper's PDF), "mean (SD)" -> (mean, SD), a
# second transcription to hold the YAML against. Table 1's NMSE is printed x 10^-1 and Table 2's
# x 10^-8: SCALE turns the printed numbers into the YAML's.
PRINTED = {
    "table1": {   # NMSE x 10^-1, SSIM, |J| <= 0 (%)
        "initial": {"nmse": (0.363, 0.268), "ssim": (0.823, 0.066), "pct_jac_nonpos": 0},
        "vm": {"nmse": (0.047, 0.057), "ssim": (0.936, 0.024), "pct_jac_nonpos": (0.050, 0.106)},
        "vm_diff": {"nmse": (0.034, 0.015), "ssim": (0.957, 0.013), "pct_jac_nonpos": (0.014, 0.065)},
        "diffusemorph": {"nmse": (0.032, 0.017), "ssim": (0.964, 0.011), "pct_jac_nonpos": (0.017, 0.056)},
    },
    "table2": {   # Dice, |J| <= 0 (%), PSNR (dB), NMSE x 10^-8, Time (sec)
        "initial": {"dice_structures": (0.642, 0.188), "psnr_continuous": (28.058, 2.205),
                    "nmse_continuous": (0.790, 0.516)},
        "vm": {"dice_structures": (0.787, 0.113), "pct_jac_nonpos": (0.169, 0.109),
               "psnr_continuous": (30.678, 2.652), "nmse_continuous": (0.477, 0.453), "runtime_s": 0.219},
        "vm_diff": {"dice_structures": (0.794, 0.104), "pct_jac_nonpos": (0.291, 0.188),
                    "psnr_continuous": (29.481, 2.473), "nmse_continuous": (0.602, 0.477), "runtime_s": 2.902},
        "diffusemorph": {"dice_structures": (0.802, 0.109), "pct_jac_nonpos": (0.161, 0.082),
                         "psnr_continuous": (30.725, 2.579), "nmse_continuous": (0.466, 0.432), "runtime_s": 0.456},
    },
    "table3": {   # Dice, |J| <= 0 (%), Time (min)
        "initial": {"dice": (0.616, 0.171), "pct_jac_nonpos": 0, "runtime_s": "0 min"},
        "syn": {"dice": (0.752, 0.140), "pct_jac_nonpos": (0.400, 0.100), "runtime_s": "122 min, CPU"},
        "vm": {"dice": (0.749, 0.145), "pct_jac_nonpos": (0.553, 0.075), "runtime_s": "0.01 min, GPU"},
        "vm_diff": {"dice": (0.731, 0.139), "pct_jac_nonpos": (0.631, 0.073), "runtime_s": "0.01 min, GPU"},
        "symnet": {"dice": (0.733, 0.148), "pct_jac_nonpos": (0.547, 0.049), "runtime_s": "0.43 min, GPU"},
        "ms_dirnet": {"dice": (0.751, 0.142), "pct_jac_nonpos": (0.804, 0.089), "runtime_s": "2.06 min, GPU"},
        "cyclemorph": {"dice": (0.750, 0.144), "pct_jac_nonpos": (0.510, 0.087), "runtime_s": "0.01 min, GPU"},
        "diffusemorph": {"dice": (0.756, 0.139), "pct_jac_nonpos": (0.505, 0.058), "runtime_s": "0.01 min, GPU"},
    },
    "table4": {   # Dice, |J| <= 0 (%) at lambda = 2, 5, 10
        "lam_2": {"dice": (0.736, 0.152), "pct_jac_nonpos": (0.498, 0.098)},
        "lam_5": {"dice": (0.746, 0.143), "pct_jac_nonpos": (0.499, 0.070)},
        "lam_10": {"dice": (0.756, 0.139), "pct_jac_nonpos": (0.505, 0.058)},
    },
}
SCALE = {("table1", "nmse"): 1e-1, ("table2", "nmse_continuous"): 1e-8}


@pytest.fixture(scope="module")
def exp():
    return load_experiment(YAML)


def test_all_ten_artifacts_in_the_papers_order(exp):
    assert list(exp.artifacts) == ARTIFACTS
    for name, art in exp.artifacts.items():
        assert art.claim and art.claim.check, f"{name}: a claim with a check"
        assert art.title, name


@pytest.mark.parametrize("table", sorted(PRINTED))
def test_the_papers_numbers_as_printed(exp, table):
    assert_printed(exp.paper_rows()[table], PRINTED[table], table, lambda key: SCALE.get((table, key), 1.0))


def test_table4s_lambda_10_is_table3s_row_and_one_training(exp):
    """The paper's lambda = 10 row repeats Table 3's 'Ours'; here it is the same network too."""
    assert exp.paper_rows()["table4"]["lam_10"] == {k: v for k, v in exp.paper_rows()["table3"]["diffusemorph"].items()
                                                      if k != "runtime_s"}
    plan = Planner([exp], STANDINS, profile="test").build()
    label = {(u.artifact, u.row): u.label for u in plan.uses}
    assert label[("table4", "lam_10")] == label[("table3", "diffusemorph")]
    assert label[("fig10", "diffusemorph")] == label[("table3", "diffusemorph")]


def test_rows_settings_reach_the_configs(exp):
    plan = Planner([exp], STANDINS, profile="full").build()
    uses = {(u.artifact, u.row): u for u in plan.uses}
    cfg = lambda a, r: plan.trainings[uses[(a, r)].label.split("@")[0]]["_config"]
    official = {"betas": "official", "init_weights": "official", "augment": "official"}   # full: as the code
    assert cfg("table1", "diffusemorph") == {"lam": 2, "lr": 5e-6, "iterations": 50880, "network": "official",
                                             "inter_subject": False, "generate": True, "gen_t": 200,
                                             "gen_steps": 80, "sampler": "ddpm", **official}
    # Table 2 writes the trajectory at the times of the task's intermediate frames
    assert cfg("table2", "diffusemorph") == {"lam": 20, "lr": 2e-4, "iterations": 72000, "network": "official",
                                             "inter_subject": False, "etas": [0, 0.25, 0.5, 0.75, 1], **official}
    assert cfg("table2", "vm")["etas"] == [0, 0.25, 0.5, 0.75, 1]
    assert cfg("table3", "diffusemorph") == {"lam": 10, "lr": 1e-4, "iterations": 72000, "network": "official",
                                             **official}
    # CycleMorph keeps its preset's Adam; the DiffuseMorph-only settings stay out of other methods
    assert cfg("table3", "cyclemorph")["betas"] == "adam" and "init_weights" not in cfg("table3", "cyclemorph")
    short = Planner([exp], STANDINS, profile="test_full").build()
    assert not any(set(official) & set(t["_config"]) for t in short.trainings.values() if t["method"] == "diffusemorph")
    vm, vm_diff = cfg("table3", "vm"), cfg("table3", "vm_diff")
    assert vm["backbone"] == "voxelmorph" and vm_diff["backbone"] == "vm-diff"
    assert vm["backbone_kwargs"] == vm_diff["backbone_kwargs"] == {"variant": "vm1"}
    assert (vm["trajectory"], vm_diff["trajectory"], vm["lr"]) == ("scaled", "squaring", 1e-4)
    assert "network" not in vm                       # a DiffuseMorph setting, left out of VoxelMorph runs
    assert uses[("table3", "syn")].label.startswith("syn-diffusemorph@")
    assert {uses[("table3", r)].status for r in ("symnet", "cyclemorph")} == {"run"}
    assert uses[("table3", "ms_dirnet")].status == "not_implemented"
    # Table 2's Dice: the union labels reach the evaluation config
    reg = plan.registrations[("diffusemorph", uses[("table2", "diffusemorph")].label)]
    assert plan.evals[reg["eval_config"]]["label_unions"] == {"left ventricle + myocardium": [2, 3],
                                                             "all structures": [1, 2, 3]}
    # Tables 2-3: the official code's Dice beside ours (named metrics); Table 1 keeps every metric of ours
    assert {"dice_structures", "dice_structures_official"} <= set(plan.evals[reg["eval_config"]]["metrics"])
    for art, row in (("table3", "diffusemorph"), ("table3", "vm"), ("table4", "lam_2")):
        reg = plan.registrations[("diffusemorph", uses[(art, row)].label)]
        assert {"dice", "dice_before"} <= set(plan.evals[reg["eval_config"]]["metrics"])
        assert ("dice_official" in plan.evals[reg["eval_config"]]["metrics"]) == (art == "table3")
    reg = plan.registrations[("diffusemorph", uses[("table1", "diffusemorph")].label)]
    assert plan.evals[reg["eval_config"]]["metrics"] is None


@pytest.mark.parametrize("profile", ["test", "test_full"])
def test_every_artifact_runs_on_the_standins(exp, profile, tmp_path):
    plan = Planner([exp], STANDINS, profile=profile).build()
    ran = {u.artifact for u in plan.uses if u.status == "run"}
    assert ran == set(ARTIFACTS), set(ARTIFACTS) - ran
    statuses = {u.status for u in plan.uses}
    assert statuses <= ({"run", "skipped"} if profile == "test" else {"run", "not_implemented"})
    # the same through the command line, with the plan files written
    out = tmp_path / "plan"
    assert main(["plan", "--papers", str(YAML), "--ndims", "toy=2,3", "--ndims", "faces=2", "--ndims", "acdc=3", "--ndims", "oasis=3",
                 "--profile", profile, "--out", str(out)]) == 0
    assert (out / "trainings.csv").read_text().count("\n") - 1 == len(plan.trainings)
    assert json.loads((out / "run.json").read_text())


def test_without_the_standins_faces_and_cardiac_say_why(exp):
    plan = Planner([exp], {"toy": {2, 3}}, profile="test").build()
    notes = {u.artifact: u.note for u in plan.uses if u.status == "skipped" and "needs dataset" in u.note}
    # the note names the real dataset (the engine's wording; the stand-in `faces` would serve too)
    assert notes["table1"] == "needs dataset rafd" and notes["table2"] == "needs dataset acdc"
    assert notes["table3"] == "needs dataset oasis3"


def test_a_tasks_profile_wins_over_the_rows_but_not_the_sweep(exp):
    """test_full gives the brain rows lr 1e-3 over their paper rate 1e-4 (150 steps learn nothing
    at 1e-4); `full` keeps the rows' 1e-4, and the lambda sweep keeps each swept value."""
    def configs(profile):
        plan = Planner([exp], STANDINS, profile=profile).build()
        return {(u.artifact, u.row): plan.trainings[u.label.split("@")[0]]["_config"]
                for u in plan.uses if u.status == "run" and u.label and "@brain_3d" in u.label
                and u.label.split("@")[0] in plan.trainings}
    short, full = configs("test_full"), configs("full")
    assert short[("table3", "diffusemorph")]["lr"] == 1e-3 and full[("table3", "diffusemorph")]["lr"] == 1e-4
    assert short[("table3", "vm")]["lr"] == 1e-3 and full[("table3", "vm")]["lr"] == 1e-4
    assert {short[("table4", f"lam_{v}")]["lam"] for v in (2, 5, 10)} == {2, 5, 10}
    assert all(short[("table4", f"lam_{v}")]["lr"] == 1e-3 for v in (2, 5, 10))


def test_a_tasks_own_profile_sets_its_length(exp):
    """The brain's 60 epochs (61 620 iterations) hold for task oasis3_3d only, in `full` only."""
    real = {**STANDINS, "oasis3": {3}}
    plan = Planner([exp], real, profile="full").build()
    uses = {(u.artifact, u.row): u for u in plan.uses}
    cfg = lambda a, r: plan.trainings[uses[(a, r)].label.split("@")[0]]["_config"]
    assert cfg("table3", "diffusemorph")["iterations"] == 61620 and cfg("table3", "vm")["iterations"] == 61620
    assert cfg("table2", "diffusemorph")["iterations"] == 72000
    test = Planner([exp], real, profile="test").build()
    assert all(r["_config"]["iterations"] == 5 for r in test.trainings.values() if r["ndim"] == 3)


def test_test_pairs_follow_each_tasks_protocol(exp):
    """Table 2 registers ED -> ES of each test patient (acdc.yaml's diffusemorph_ed_to_es), Table 3
    every test brain to the atlas (toy.yaml's atlas_be); the pipeline makes those pairs."""
    plan = Planner([exp], STANDINS, profile="test_full").build()
    by_task = {}
    for reg in plan.registrations.values():
        by_task.setdefault(reg["label"].split("@")[1].split(".")[0], set()).add(reg["pairs"])
    assert by_task["acdc_3d"] == {"acdc/diffusemorph_ed_to_es"}
    assert by_task["brain_3d"] == {"oasis/atlas_be"}
    assert by_task["faces_2d"] == {""}             # the stand-in's own pairs (neutral -> expression)


def test_brain_rows_train_onto_the_atlas(exp):
    """Table 3 is atlas-based: its trainings register every training subject onto the atlas
    (`--atlas-subject first`, the subject make-pairs' atlas scheme picks); the cardiac ones do not."""
    plan = Planner([exp], STANDINS, profile="test_full").build()
    atlas = {r["run"]: r["atlas"] for r in plan.trainings.values()}
    uses = {(u.artifact, u.row): u.label.split("@")[0] for u in plan.uses if u.status == "run"}
    assert atlas[uses[("table3", "diffusemorph")]] == atlas[uses[("table3", "vm")]] == "first"
    assert atlas[uses[("table2", "diffusemorph")]] == ""


def test_per_label_box_plot_draws_each_row_and_label():
    """Fig. 10's view: per-label values of two rows and the initial values, one box each."""
    from diffreg.report.figures.per_label import dice_per_label_boxplot, per_label_values
    import pandas as pd
    rows = []
    for pair in ("a", "b", "c"):
        for label in ("1", "2"):
            for method, v in (("vm", 0.6), ("diffusemorph", 0.7)):
                rows.append({"dataset": "oasis", "pair": pair, "method": method, "metric": "dice", "label": label, "value": v})
                rows.append({"dataset": "oasis", "pair": pair, "method": method, "metric": "dice_before", "label": label, "value": 0.5})
        rows.append({"dataset": "oasis", "pair": pair, "method": "vm", "metric": "dice", "label": "mean", "value": 0.6})
    df = pd.DataFrame(rows)
    vals = per_label_values(df)
    # 'mean' left out; the initial values once per pair and label (not once per row)
    assert sorted(vals["label"].unique()) == ["1", "2"] and (vals["method"] == "initial").sum() == 6
    assert vals.groupby("method")["value"].mean().to_dict() == pytest.approx({"diffusemorph": 0.7, "initial": 0.5, "vm": 0.6})
    png = dice_per_label_boxplot(df, "t", {"1": "cortex", "2": "WM"}, ["vm", "diffusemorph"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert dice_per_label_boxplot(df[df["label"] == "mean"], "t") is None


def _values(rows: dict[str, float], metric: str, n: int = 12, seed: int = 0):
    """Per-pair values around each row's mean, with the same pair effects for every row (paired)."""
    import numpy as np
    import pandas as pd
    rng = np.random.default_rng(seed)
    pair_effect, noise = rng.normal(0, 0.01, n), {r: rng.normal(0, 1e-5, n) for r in rows}
    return pd.DataFrame([{"row": r, "pair": f"p{i}", "metric": metric, "value": m + pair_effect[i] + noise[r][i]}
                         for r, m in rows.items() for i in range(n)])


def test_the_papers_claims_are_judged_as_the_paper_makes_them(exp):
    """Each clause of Tables 1, 3 and 4 is a check of its own; on values shaped like the paper's
    tables (the paper's means, SDs small enough for 12 pairs) every clause holds, and reversing the
    lambda trade-off fails both of Table 4's orderings."""
    import pandas as pd

    from diffreg.report.claims import judge
    paper = {
        "table1": {"nmse": {"vm": 0.0047, "vm_diff": 0.0034, "diffusemorph": 0.0032},
                   "ssim": {"vm": 0.936, "vm_diff": 0.957, "diffusemorph": 0.964},
                   "pct_jac_nonpos": {"vm": 0.050, "vm_diff": 0.014, "diffusemorph": 0.017}},
        "table3": {"dice": {"syn": 0.752, "vm": 0.749, "vm_diff": 0.731, "symnet": 0.733, "cyclemorph": 0.750,
                            "diffusemorph": 0.756},
                   "pct_jac_nonpos": {"syn": 0.400, "vm": 0.553, "vm_diff": 0.631, "symnet": 0.547,
                                      "cyclemorph": 0.510, "diffusemorph": 0.505}},
        "table4": {"dice": {"2": 0.736, "5": 0.746, "10": 0.756},
                   "pct_jac_nonpos": {"2": 0.498, "5": 0.499, "10": 0.505}},
    }
    for art, per_metric in paper.items():
        values = pd.concat([_values(rows, m) for m, rows in per_metric.items()], ignore_index=True)
        claims = exp.artifacts[art].all_claims
        assert {c.check["metric"] for c in claims} == set(per_metric), art     # every clause checked
        for c in claims:
            assert judge(c.check, values).verdict == "holds", (art, c.text, judge(c.check, values).reason)
    swapped = {"dice": {"2": 0.756, "5": 0.746, "10": 0.736}, "pct_jac_nonpos": {"2": 0.505, "5": 0.499, "10": 0.498}}
    values = pd.concat([_values(rows, m) for m, rows in swapped.items()], ignore_index=True)
    verdicts = [judge(c.check, values).verdict for c in exp.artifacts["table4"].all_claims]
    assert verdicts == ["does not hold"] * 3

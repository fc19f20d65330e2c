"""experiments/ldm_morph.yaml: every table and figure of LDM-Morph, the paper's numbers as it prints
them, LDM-Morph's own rows (Table 1, the Table 3 ablation, the Fig. 7 beta sweep) planned on its
latent diffusion stage, the claims as the paper states them, and plans on the embedded stand-ins."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from diffreg.cli import main
from diffreg.experiments import load_experiment
from diffreg.planner import Planner

from .paper_numbers import assert_printed

YAML = Path(__file__).resolve().parents[2] / "experiments" / "ldm_morph.yaml"
DATASETS = ["camus2ch", "camus4ch", "echo", "acdc"]
ARTIFACTS = ([f"table1_{d}" for d in DATASETS] + [f"fig4_{d}" for d in DATASETS] + ["fig5"]
             + ["table2_camus2ch", "table2_camus4ch", "fig6"] + [f"fig7_{d}" for d in DATASETS]
             + [f"table3_{d}" for d in DATASETS] + ["fig_a8", "fig_a9", "fig_a10"])
STANDINS = {"camus": {2}, "echonet": {2}, "acdc": {2, 3}}
TABLE1_ROWS = ["syn", "lddmm", "voxelmorph", "cyclemorph", "diffusemorph", "transmorph", "transmatch", "ldm_morph"]
LEARNED = ["voxelmorph", "cyclemorph", "diffusemorph", "transmorph", "transmatch"]
LDM_ROWS = {"ldm_morph", "base", "ldm_fe", "ldm_fe_lgca"}

# The paper's tables as printed, a second transcription to hold the YAML against: "mean (SD)" ->
# (mean, SD); per row (Avg. DSC, |J| <= 0 (%), Time (s)); None = "-" (not printed).
T1 = {   # Table 1: CAMUS-2CH, CAMUS-4CH, ECHO, ACDC
    "initial": [((0.764, 0.067), None, None), ((0.764, 0.071), None, None), ((0.738, 0.076), None, None),
                ((0.555, 0.207), None, None)],
    "syn": [((0.853, 0.064), (1.460, 0.576), 2.05), ((0.870, 0.064), (1.649, 0.600), 2.06),
            ((0.860, 0.066), (1.190, 0.681), 2.13), ((0.799, 0.152), (0.677, 0.475), 1.79)],
    "lddmm": [((0.856, 0.063), (0.035, 0.201), 6.35), ((0.859, 0.078), "< 0.01", 6.39),
              ((0.840, 0.109), (0.014, 0.189), 6.52), ((0.798, 0.115), (0.013, 0.057), 6.31)],
    "voxelmorph": [((0.852, 0.054), (0.542, 0.499), 0.03), ((0.858, 0.061), (0.607, 0.452), 0.03),
                   ((0.857, 0.061), (0.802, 0.659), 0.01), ((0.830, 0.102), (0.375, 0.492), 0.04)],
    "cyclemorph": [((0.824, 0.059), (0.945, 0.586), 0.03), ((0.842, 0.061), (0.537, 0.381), 0.03),
                   ((0.850, 0.061), (1.365, 0.898), 0.01), ((0.784, 0.111), (0.302, 0.323), 0.05)],
    "diffusemorph": [((0.852, 0.052), (0.437, 0.417), 0.08), ((0.852, 0.062), (0.728, 0.464), 0.05),
                     ((0.838, 0.071), (0.302, 0.377), 0.05), ((0.664, 0.137), (0.390, 0.419), 0.07)],
    "transmorph": [((0.871, 0.051), (0.696, 0.450), 0.04), ((0.876, 0.057), (0.842, 0.476), 0.04),
                   ((0.863, 0.058), (1.753, 1.033), 0.02), ((0.842, 0.076), (0.319, 0.433), 0.05)],
    "transmatch": [((0.871, 0.052), (0.523, 0.393), 0.06), ((0.875, 0.059), (0.777, 0.421), 0.06),
                   ((0.874, 0.058), (1.331, 0.892), 0.05), ((0.841, 0.076), (0.344, 0.466), 0.07)],
    "ldm_morph": [((0.882, 0.049), (0.239, 0.263), 0.11), ((0.889, 0.055), (0.441, 0.351), 0.11),
                  ((0.883, 0.056), (0.400, 0.419), 0.10), ((0.850, 0.053), (0.157, 0.255), 0.12)],
}
T2 = {   # Table 2 (trained on ECHO): CAMUS-2CH, CAMUS-4CH
    "initial": [((0.764, 0.067), None), ((0.764, 0.071), None)],
    "syn": [((0.853, 0.064), (1.460, 0.576)), ((0.870, 0.064), (1.649, 0.600))],
    "lddmm": [((0.856, 0.063), (0.035, 0.201)), ((0.859, 0.078), "< 0.01")],
    "voxelmorph": [((0.842, 0.060), (0.233, 0.198)), ((0.851, 0.062), (0.300, 0.193))],
    "cyclemorph": [((0.841, 0.057), (0.590, 0.337)), ((0.851, 0.062), (0.805, 0.428))],
    "diffusemorph": [((0.800, 0.060), (0.466, 0.314)), ((0.806, 0.071), (0.385, 0.273))],
    "transmorph": [((0.850, 0.056), (1.059, 0.570)), ((0.861, 0.059), (1.401, 0.634))],
    "transmatch": [((0.872, 0.058), (0.780, 0.562)), ((0.877, 0.060), (1.066, 0.607))],
    "ldm_morph": [((0.877, 0.053), (0.166, 0.278)), ((0.889, 0.054), (0.178, 0.185))],
}
T3 = {   # Table 3 (ablation): CAMUS-2CH, CAMUS-4CH, ECHO, ACDC
    "base": [((0.872, 0.051), (0.653, 0.516)), ((0.873, 0.058), (0.641, 0.408)),
             ((0.872, 0.058), (1.320, 0.910)), ((0.833, 0.087), (0.326, 0.416))],
    "ldm_fe": [((0.874, 0.048), (0.471, 0.373)), ((0.881, 0.056), (0.786, 0.483)),
               ((0.874, 0.057), (1.332, 0.926)), ((0.845, 0.060), (0.240, 0.311))],
    "ldm_fe_lgca": [((0.876, 0.050), (0.525, 0.438)), ((0.883, 0.055), (0.759, 0.491)),
                    ((0.877, 0.057), (1.129, 0.914)), ((0.848, 0.056), (0.241, 0.334))],
    "ldm_morph": [((0.882, 0.049), (0.239, 0.263)), ((0.889, 0.055), (0.441, 0.351)),
                  ((0.883, 0.056), (0.400, 0.419)), ((0.850, 0.053), (0.157, 0.255))],
}


def _printed(table: dict, datasets: list[str], columns: list[str]) -> dict[str, dict[str, dict]]:
    """artifact suffix -> row -> {key: printed value} in the YAML's keys."""
    out = {}
    for i, ds in enumerate(datasets):
        rows = {}
        for row, per_ds in table.items():
            vals = {}
            for col, v in zip(columns, per_ds[i]):
                if v is not None:
                    vals[col] = v
            rows[row] = vals
        out[ds] = rows
    return out


PRINTED = {
    **{f"table1_{d}": r for d, r in _printed(T1, DATASETS, ["dice", "pct_jac_nonpos", "runtime_s"]).items()},
    **{f"table2_{d}": r for d, r in _printed(T2, ["camus2ch", "camus4ch"], ["dice", "pct_jac_nonpos"]).items()},
    **{f"table3_{d}": r for d, r in _printed(T3, DATASETS, ["dice", "pct_jac_nonpos"]).items()},
}


@pytest.fixture(scope="module")
def exp():
    return load_experiment(YAML)


def test_every_artifact_in_the_papers_order(exp):
    assert list(exp.artifacts) == ARTIFACTS
    for name, art in exp.artifacts.items():
        assert art.title, name
        if name != "fig4_acdc" and not name.startswith("fig_a"):
            checks = _checks(art)
            assert checks and all(checks), f"{name}: a claim with a check"


def _checks(art):
    return [c.check for c in art.all_claims]


def test_claims_as_the_paper_states_them(exp):
    arts = exp.artifacts
    for d in DATASETS:
        # Table 3: "as each module was progressively added ... the average DSC values consistently improved"
        t3 = _checks(arts[f"table3_{d}"])
        assert {"metric": "dice", "order": ["base", "ldm_fe", "ldm_fe_lgca", "ldm_morph"]} in t3
        assert {"metric": "pct_jac_nonpos", "better": "ldm_morph", "than": "ldm_fe_lgca"} in t3
        assert _checks(arts[f"table1_{d}"]) == [{"metric": "dice", "best": "ldm_morph", "among": "all"}]
    for d in ("camus2ch", "camus4ch", "echo"):
        # Fig. 4: "the highest median and the most compact box": median and IQR, not the best mean
        assert _checks(arts[f"fig4_{d}"]) == [{"metric": "dice", "median_iqr": "ldm_morph", "among": "all"}]
    assert not _checks(arts["fig4_acdc"])
    assert {"metric": "dice", "argmax_in": [0.4]} in _checks(arts["fig7_camus4ch"])
    trend = {"metric": "pct_jac_nonpos", "trend": ["1", "0.8", "0.6", "0.4", "0.2"], "margin": 0.0}
    assert trend in _checks(arts["fig7_camus2ch"]) and trend in _checks(arts["fig7_camus4ch"])


@pytest.mark.parametrize("table", sorted(PRINTED))
def test_the_papers_numbers_as_printed(exp, table):
    assert_printed(exp.paper_rows()[table], PRINTED[table], table)


def test_ablation_full_row_and_table2_classical_rows_repeat_table1(exp):
    rows = exp.paper_rows()
    for d in DATASETS:
        t1 = rows[f"table1_{d}"]["ldm_morph"]
        assert rows[f"table3_{d}"]["ldm_morph"] == {k: v for k, v in t1.items() if k != "runtime_s"}
    for d in ("camus2ch", "camus4ch"):
        for r in ("initial", "syn", "lddmm"):
            assert rows[f"table2_{d}"][r] == {k: v for k, v in rows[f"table1_{d}"][r].items() if k != "runtime_s"}


def test_ldm_morph_rows_run_on_the_latent_diffusion_stage(exp):
    for name in ("ldm_morph", "ldm_morph_base", "ldm_morph_ldm_fe", "ldm_morph_ldm_fe_lgca"):
        preset = exp.losses[name]
        assert preset["method"] == "ldm_morph" and "status" not in preset
        assert (preset["lr"], preset["batch_size"], preset["lambda_reg"]) == (1e-4, 1, 0.01)
    assert exp.losses["ldm_morph"]["beta"] == 0.6
    variants = {n: (exp.losses[n]["features"], exp.losses[n]["lgca"], exp.losses[n]["beta"])
                for n in ("ldm_morph_base", "ldm_morph_ldm_fe", "ldm_morph_ldm_fe_lgca", "ldm_morph")}
    assert variants == {"ldm_morph_base": (False, False, 1.0), "ldm_morph_ldm_fe": (True, False, 1.0),
                        "ldm_morph_ldm_fe_lgca": (True, True, 1.0), "ldm_morph": (True, True, 0.6)}
    assert exp.stages["latent_diffusion"]["kind"] == "ldm_morph_latent_diffusion"
    for profile in ("test", "test_full", "full"):
        plan = Planner([exp], STANDINS, profile=profile).build()
        assert {u.status for u in plan.uses} <= {"run", "skipped"}, profile
        uses = {(u.artifact, u.row): u for u in plan.uses}
        # the test profile: the ablation and three betas on CAMUS-2CH, LDM-Morph itself everywhere
        for d in DATASETS:
            betas = sorted(r for a, r in uses if a == f"fig7_{d}")
            full_sweep = profile != "test" or d == "camus2ch"
            assert betas == (["beta_0.2", "beta_0.4", "beta_0.6", "beta_0.8", "beta_1.0"] if profile != "test"
                             else ["beta_0.2", "beta_0.6", "beta_1.0"] if d == "camus2ch" else ["beta_0.6"])
            ran = {r for (a, r), u in uses.items() if a == f"table3_{d}" and u.status == "run"}
            assert ran == (LDM_ROWS if full_sweep else {"ldm_morph"})
            assert uses[(f"table1_{d}", "ldm_morph")].status == "run"
            # beta 0.6 is Table 1's training, beta 1.0 the ablation's LDM-FE + LGCA: one training each
            assert uses[(f"fig7_{d}", "beta_0.6")].label == uses[(f"table1_{d}", "ldm_morph")].label
            if full_sweep:
                assert uses[(f"fig7_{d}", "beta_1.0")].label == uses[(f"table3_{d}", "ldm_fe_lgca")].label
        # one latent diffusion model per training dataset, trained on its training subjects
        assert sorted((s["kind"], s["dataset"], s["data"]) for s in plan.stages.values()) == \
            [("ldm_morph_latent_diffusion", d, "yes") for d in ("acdc", "camus", "echonet")]
        runs = [t for t in plan.trainings.values() if t["method"] == "ldm_morph"]
        # Table 1 + 3 ablation rows + the betas other than 0.6 and 1.0 (test: CAMUS only, beta 0.2)
        assert len(runs) == (3 * 7 if profile != "test" else 5 + 1 + 1)
        for t in runs:
            cfg = t["_config"]
            assert ("ldm" in cfg) == (cfg["features"] or cfg["beta"] < 1), cfg
            assert t["needs"].startswith("ldm=stage:latent_diffusion-") or not cfg["features"]
            assert cfg["inter_subject"] is False and cfg["network"] == ("official" if profile == "full" else "small")


def test_comparison_rows_settings_reach_the_configs(exp):
    plan = Planner([exp], STANDINS, profile="full").build()
    uses = {(u.artifact, u.row): u for u in plan.uses}
    cfg = lambda a, r: plan.trainings[uses[(a, r)].label.split("@")[0]]["_config"]
    vm = cfg("table1_echo", "voxelmorph")
    assert (vm["similarity"], vm["similarity_kwargs"], vm["lambda_reg"], vm["lr"]) == ("mse", {}, 0.01, 1e-4)
    assert vm["backbone_kwargs"] == {"variant": "vm2"}
    assert (vm["iterations"], vm["batch_size"], vm["inter_subject"]) == (24001, 1, False)
    tm = cfg("table1_echo", "transmorph")
    assert (tm["backbone"], tm["similarity"], tm["lambda_reg"], tm["lr"]) == ("transmorph", "mse", 1.0, 1e-4)
    tmatch = cfg("table1_echo", "transmatch")
    assert (tmatch["backbone"], tmatch["similarity"], tmatch["lambda_reg"], tmatch["lr"]) == ("transmatch", "mse", 4.0, 4e-4)
    assert cfg("table1_echo", "cyclemorph") == {"lr": 2e-4, "lambda_reg": 1.0, "iterations": 24001, "batch_size": 1,
                                                "inter_subject": False}   # NCC: CycleMorph's own, as the paper
    assert "beta" not in cfg("table1_echo", "cyclemorph")   # LDM-Morph's beta stays in its own preset
    dm = cfg("table1_echo", "diffusemorph")
    assert dm == {"network": "official", "iterations": 24001, "batch_size": 1, "inter_subject": False}
    assert uses[("table1_echo", "syn")].label == "syn-ldm_morph@echo.test"
    assert uses[("table1_acdc", "lddmm")].label == "lddmm-ldm_morph@acdc_2d.test"


def test_table2_trains_on_echo_and_tests_on_camus(exp):
    plan = Planner([exp], STANDINS, profile="test_full").build()
    uses = {(u.artifact, u.row): u for u in plan.uses}
    for row in LEARNED:
        echo_run = uses[("table1_echo", row)].label.split("@")[0]
        for d in ("camus2ch", "camus4ch"):
            label = uses[(f"table2_{d}", row)].label
            assert label == f"{echo_run}@echo_to_{d}_toy.test"          # the ECHO training, shared
            reg = plan.registrations[("ldm_morph", label)]
            assert (reg["dataset"], reg["pairs"]) == ("camus", "camus/ldm_morph_ed_to_es")
        assert plan.trainings[echo_run]["dataset"] == "echonet"
    # without EchoNet, Table 2 says which training data it needs
    plan = Planner([exp], {"camus": {2}}, profile="full").build()
    notes = {u.note for u in plan.uses if u.artifact == "table2_camus2ch"}
    assert notes == {"needs dataset echonet (the training data of task echo_to_camus2ch_toy)"}


def test_real_datasets_pick_the_real_tasks(exp):
    real = {"camus-2ch": {2}, "camus-4ch": {2}, "echonet": {2}, "acdc": {2, 3}}
    plan = Planner([exp], real, profile="full").build()
    regs = {r["label"].split("@")[1]: (r["dataset"], r["pairs"]) for r in plan.registrations.values()}
    assert regs == {"camus2ch.test": ("camus-2ch", "camus/ldm_morph_ed_to_es"),
                    "camus4ch.test": ("camus-4ch", "camus/ldm_morph_ed_to_es"),
                    "echo.test": ("echonet", "echonet/ldm_morph_ed_to_es"),
                    "acdc_2d.test": ("acdc", "acdc/ldm_morph_ed_to_es"),
                    "echo_to_camus2ch.test": ("camus-2ch", "camus/ldm_morph_ed_to_es"),
                    "echo_to_camus4ch.test": ("camus-4ch", "camus/ldm_morph_ed_to_es")}
    # 5 learned methods and 7 LDM-Morph trainings (Table 1, 3 ablation rows, betas 0.2, 0.4, 0.8) x 4
    # training sets (CAMUS-2CH, CAMUS-4CH, ECHO, ACDC); Table 2 reuses ECHO
    assert len(plan.trainings) == 4 * (5 + 7)
    assert {t["dataset"] for t in plan.trainings.values()} == {"camus-2ch", "camus-4ch", "echonet", "acdc"}


@pytest.mark.parametrize("profile", ["test", "test_full"])
def test_plan_on_the_standins(exp, profile, tmp_path):
    out = tmp_path / "plan"
    assert main(["plan", "--papers", str(YAML), "--ndims", "camus=2", "--ndims", "echonet=2", "--ndims", "acdc=2,3",
                 "--profile", profile, "--out", str(out)]) == 0
    read = lambda name: list(csv.DictReader(open(out / name)))
    trainings, regs, uses = read("trainings.csv"), read("registrations.csv"), read("uses.csv")
    assert json.loads((out / "run.json").read_text())
    # one training set per stand-in (CAMUS 2CH and 4CH share the one stand-in), all 2D
    assert {t["ndim"] for t in trainings} == {"2"}
    assert {t["dataset"] for t in trainings} == {"camus", "echonet", "acdc"}
    n_learned = 1 if profile == "test" else len(LEARNED)
    # LDM-Morph: Table 1, 3 ablation rows, the other betas (test: the ablation and beta 0.2 on CAMUS only)
    n_ldm = 3 + 3 + 1 if profile == "test" else 3 * 7
    assert len(trainings) == 3 * n_learned + n_ldm
    stages = read("stages.csv")
    assert sorted(s["dataset"] for s in stages) == ["acdc", "camus", "echonet"]
    tasks = {"camus2ch_toy", "camus4ch_toy", "echo", "acdc_2d", "echo_to_camus2ch_toy", "echo_to_camus4ch_toy"}
    assert {r["label"].split("@")[1].split(".")[0] for r in regs} == tasks
    classical = [r for r in regs if r["kind"] == "classical"]
    if profile == "test":
        assert classical == [] and {r["method"] for r in regs} == {"voxelmorph", "ldm_morph"}
    else:   # SyN and LDDMM on every Table 1 task (Table 2's SyN / LDDMM rows are not in test_full)
        assert {(r["method"], r["preset"]) for r in classical} == {("syn", "ldm_morph"), ("lddmm", "ldm_morph")}
        assert len(classical) == 2 * 4
    assert all(r["pairs"].endswith("/ldm_morph_ed_to_es") for r in regs)
    ran = {u["artifact"] for u in uses if u["status"] == "run"}
    assert ran == set(ARTIFACTS)
    assert {u["row"] for u in uses if u["status"] == "run" and u["artifact"] == "table3_camus2ch"} == LDM_ROWS
    statuses = {u["status"] for u in uses}
    assert statuses <= {"run", "skipped"}
    skipped = {u["note"] for u in uses if u["status"] == "skipped"}
    assert skipped <= {f"not in the {profile} profile"}


def test_the_papers_dice_labels_reach_the_evaluation(exp):
    """CAMUS scores the LV endocardium alone, ACDC myocardium and LV: the eval configs say so."""
    plan = Planner([exp], STANDINS, profile="test_full").build()
    scored = {}
    for (_, label), reg in plan.registrations.items():
        scored.setdefault(reg["dataset"], set()).add(tuple(plan.evals[reg["eval_config"]].get("scored_labels") or ()))
    assert scored["camus"] == {(1,)} and scored["acdc"] == {(2, 3)} and scored["echonet"] == {()}

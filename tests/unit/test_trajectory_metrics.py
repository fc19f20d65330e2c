"""The trajectory's late change (DiffuseReg Fig. 3: "noise almost eliminated by 400 of 2000
steps") on trajectories made in code whose answer is known, through `diffreg evaluate`, and the
`at_most` claim check it is judged with."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from diffreg.cli import main
from diffreg.experiments import CHECK_KEYS, load_experiment
from diffreg.io import write_field, write_image
from diffreg.report import stats
from diffreg.report.claims import judge
from diffreg.report.claim_checks import judged_claim
from diffreg.trajectory_metrics import LATE_FROM, late_change_indices, trajectory_late_change

TIMES = [k / 10 for k in range(11)]           # DiffuseReg's default: every 10 % of the steps


def _trajectory(progress, shape=(3, 6, 7, 5), seed=0):
    """u(t) = start + progress(t) * (end - start) at each saved time."""
    rng = np.random.default_rng(seed)
    start, end = rng.normal(size=shape), rng.normal(size=shape) * 0.3
    return [start + progress(t) * (end - start) for t in TIMES]


def test_a_trajectory_that_stops_at_20_percent_has_no_late_change():
    assert trajectory_late_change(_trajectory(lambda t: min(t / LATE_FROM, 1.0)), TIMES) == pytest.approx(0, abs=1e-12)


def test_a_linear_trajectory_keeps_80_percent_of_its_change_after_20_percent_of_the_steps():
    assert trajectory_late_change(_trajectory(lambda t: t), TIMES) == pytest.approx(0.8, rel=1e-12)


def test_an_exponential_approach_leaves_its_remaining_share():
    # u(t) = end + (start - end) exp(-k t): after time s the rest of the way is exp(-k s) of it
    k = 20.0
    progress = lambda t: (1 - np.exp(-k * t)) / (1 - np.exp(-k))   # noqa: E731 (exactly 0 and 1 at the ends)
    expected = 1 - progress(LATE_FROM)
    assert trajectory_late_change(_trajectory(progress), TIMES) == pytest.approx(expected, rel=1e-10)
    assert expected == pytest.approx(np.exp(-4), rel=1e-6)         # ~1.8 %: "almost gone"


def test_a_field_that_overshoots_and_comes_back_counts_its_distance_to_the_end():
    # at 20 % the field is twice as far as the end, on the same line: 1 of the total still to go
    progress = lambda t: 2 * t / LATE_FROM if t <= LATE_FROM else 1.0   # noqa: E731
    assert trajectory_late_change(_trajectory(progress), TIMES) == pytest.approx(1.0, rel=1e-12)


def test_missing_times_or_a_still_trajectory_give_no_number():
    assert late_change_indices([0.0, 0.25, 0.5, 0.75, 1.0]) is None       # T = 4: no step at 20 %
    assert late_change_indices([0.2, 0.6, 1.0]) is None                   # no starting field
    assert late_change_indices([0.0, 0.2 + 1e-9, 1.0]) == (0, 1, 2)       # k / n in floating point
    still = [np.ones((2, 4, 4))] * 3
    assert np.isnan(trajectory_late_change(still, [0.0, 0.2, 1.0]))


def _registration(tmp_path, times, fields):
    img, reg = tmp_path / "img", tmp_path / "reg" / "m__p"
    img.mkdir(), reg.mkdir(parents=True)
    aff = np.eye(4)
    blob = np.zeros((6, 7, 5), np.float32)
    blob[2:4, 2:5, 1:4] = 1
    for s in ("ed", "es"):
        write_image(img / f"s1_{s}.nii.gz", blob, aff)
        write_image(img / f"s1_labels_{s}.nii.gz", blob.astype(np.int16), aff)
    for k, u in enumerate(fields):
        write_field(reg / f"disp_step{k}.nii.gz", u.astype(np.float32), aff)
    write_field(reg / "disp.nii.gz", fields[-1].astype(np.float32), aff)
    (reg / "run.json").write_text(json.dumps({"method": "m", "pair": "p", "moving": "s1_es.nii.gz",
                                              "fixed": "s1_ed.nii.gz", "moving_labels": "s1_labels_es.nii.gz",
                                              "fixed_labels": "s1_labels_ed.nii.gz", "trajectory_times": times}))
    return img, reg


def _evaluate(tmp_path, img, reg):
    out = tmp_path / "metrics.csv"
    assert main(["evaluate", "--registration", str(reg), "--images-dir", str(img), "--out", str(out)]) == 0
    return pd.read_csv(out)


def test_evaluate_scores_the_saved_steps(tmp_path):
    fields = _trajectory(lambda t: t)
    df = _evaluate(tmp_path, *_registration(tmp_path, TIMES, fields))
    row = df[df["metric"] == "trajectory_late_change"]
    assert list(row["label"]) == ["all"]
    # written as float32: the linear trajectory's 0.8 up to single precision
    assert float(row["value"].iloc[0]) == pytest.approx(0.8, rel=1e-5)


def test_evaluate_adds_no_row_for_another_step_grid(tmp_path):
    times = [k / 6 for k in range(7)]               # DiffuseMorph's seven deformation scales
    fields = [np.full((3, 6, 7, 5), t) for t in times]
    df = _evaluate(tmp_path, *_registration(tmp_path, times, fields))
    assert "trajectory_late_change" not in set(df["metric"])


# ----------------------------------------------------------------------------- the claim check

def _values(rows: dict[str, np.ndarray], metric: str = "trajectory_late_change") -> pd.DataFrame:
    return pd.DataFrame([{"row": r, "pair": f"p{i}", "metric": metric, "value": float(v)}
                         for r, arr in rows.items() for i, v in enumerate(arr)])


CHECK = {"metric": "trajectory_late_change", "run": "diffusereg", "at_most": 0.1}
SPREAD = np.array([-0.01, 0.005, 0.0, 0.01, -0.005, 0.002, -0.002, 0.004, -0.004, 0.0])


def test_at_most_holds_fails_or_is_consistent_by_where_the_interval_lies():
    assert CHECK.keys() <= CHECK_KEYS
    assert judge(CHECK, _values({"diffusereg": 0.02 + SPREAD})).verdict == stats.HOLDS
    v = judge(CHECK, _values({"diffusereg": 0.5 + SPREAD}))
    assert v.verdict == stats.FAILS and "significantly" in v.reason and "not significantly" not in v.reason
    # mean 0.095 just under the limit, its interval reaching over it
    assert judge(CHECK, _values({"diffusereg": 0.095 + 2 * SPREAD})).verdict == stats.CONSISTENT


def test_at_most_ignores_rows_without_a_trajectory_and_needs_two_values():
    # the baselines have no trajectory_late_change: only other metrics, which the check does not read
    baselines = _values({"diffusemorph": np.full(10, 0.9)}, metric="dice")
    ours = _values({"diffusereg": 0.02 + SPREAD})
    assert judge(CHECK, pd.concat([ours, baselines], ignore_index=True)).verdict == stats.HOLDS
    absent = judge(CHECK, baselines)
    assert absent.verdict == stats.UNTESTABLE and "diffusereg" in absent.reason
    assert judge(CHECK, _values({"diffusereg": [0.01]})).verdict == stats.UNTESTABLE


def test_diffusereg_fig3_claim_is_judged_on_diffusereg_alone():
    """The YAML's Fig. 3 claim through the report's claim step: the baselines' rows (Dice only, no
    trajectory) are in the figure's metrics but not in the verdict."""
    exp = load_experiment(Path(__file__).resolve().parents[2] / "experiments/diffusereg.yaml")
    (claim,) = exp.artifacts["fig3"].all_claims
    rows = [("diffusereg", "trajectory_late_change", 0.03 + s) for s in SPREAD]
    rows += [(m, "dice", 0.8) for m in ("diffusemorph", "fsdiffreg") for _ in SPREAD]
    df = pd.DataFrame([{"experiment": "diffusereg", "artifact": "fig3", "method": m, "dataset": "acdc",
                        "pair": f"p{i % len(SPREAD)}", "label": "all", "metric": met, "value": v}
                       for i, (m, met, v) in enumerate(rows)])
    files: dict = {}
    judged = judged_claim(claim, "fig3", "qualitative", df, pd.DataFrame(), None, files)
    assert judged["verdict"] == stats.HOLDS, judged["evidence"]
    assert set(pd.read_csv(io.StringIO(files["fig3.values.csv"]))["row"]) == {"diffusereg"}

"""Claims about several rows (report.orderings through claims.judge) on constructed values whose
verdict is known, and an artifact with several claims judged one by one."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from diffreg.experiment_model import Artifact, Claim
from diffreg.report import stats
from diffreg.report.claims import judge


def values(rows: dict[str, np.ndarray], metric: str = "dice") -> pd.DataFrame:
    return pd.DataFrame([{"row": r, "pair": f"p{i}", "metric": metric, "value": float(v)}
                         for r, arr in rows.items() for i, v in enumerate(arr)])


BASE = np.linspace(0.60, 0.70, 10)
NOISE = np.array([0.003, -0.002, 0.001, 0.004, -0.001, 0.002, -0.003, 0.0, 0.002, -0.002])


def test_order_holds_for_a_clear_rise_and_fails_when_one_step_reverses():
    rising = {"a": BASE, "b": BASE + 0.05 + NOISE, "c": BASE + 0.10 - NOISE}
    assert judge({"metric": "dice", "order": ["a", "b", "c"]}, values(rising)).verdict == stats.HOLDS
    v = judge({"metric": "dice", "order": ["a", "c", "b"]}, values(rising))
    assert v.verdict == stats.FAILS and "b > c" in v.reason
    # lower is better: the same values read as a fall
    assert judge({"metric": "njd", "order": ["c", "b", "a"]}, values(rising, "njd")).verdict == stats.HOLDS
    assert judge({"metric": "dice", "order": ["a", "zz"]}, values(rising)).verdict == stats.UNTESTABLE


def test_order_of_rows_within_noise_is_consistent_not_holds():
    flat = {"a": BASE, "b": BASE + np.array([0.001, -0.001] * 5) + 0.0002}
    assert judge({"metric": "dice", "order": ["a", "b"]}, values(flat)).verdict == stats.CONSISTENT


def test_trend_with_margin():
    # 0, 1, 5, 10 % of pre-aligned pairs: rising, the last two within 0.001 of each other
    rows = {"0": BASE, "1": BASE + 0.02 + NOISE, "5": BASE + 0.04, "10": BASE + 0.0395 + NOISE / 10}
    check = {"metric": "dice", "trend": ["0", "1", "5", "10"], "margin": 0.005}
    assert judge(check, values(rows)).verdict == stats.HOLDS
    # the same with no margin: the 0.0005 dip from 5 to 10 breaks it
    assert judge({**check, "margin": 0.0}, values(rows)).verdict == stats.FAILS
    # last not better than first
    down = {"0": BASE + 0.05, "1": BASE + 0.05, "5": BASE}
    assert judge({"metric": "dice", "trend": ["0", "1", "5"], "margin": 1.0}, values(down)).verdict == stats.FAILS


def test_median_iqr_needs_both_the_best_median_and_the_tightest_box():
    rng = np.random.default_rng(0)
    wide = 0.7 + rng.normal(0, 0.05, 40)
    tight = 0.75 + rng.normal(0, 0.005, 40)
    check = {"metric": "dice", "median_iqr": "ours", "among": "all"}
    assert judge(check, values({"ours": tight, "other": wide})).verdict == stats.HOLDS
    # higher median but a wider box: does not hold, and the reason names the IQR
    v = judge(check, values({"ours": 0.8 + rng.normal(0, 0.08, 40), "other": tight}))
    assert v.verdict == stats.FAILS and "IQR" in v.reason
    assert judge(check, values({"ours": tight[:3], "other": wide[:3]})).verdict == stats.UNTESTABLE


def test_better_than():
    rows = {"m2m": BASE + 0.03 + NOISE, "plain": BASE}
    assert judge({"metric": "dice", "better": "m2m", "than": "plain"}, values(rows)).verdict == stats.HOLDS
    assert judge({"metric": "dice", "better": "plain", "than": "m2m"}, values(rows)).verdict == stats.FAILS


def test_artifact_claims_in_order():
    art = Artifact.from_dict({"kind": "table", "claim": {"text": "a", "check": {"best": "x"}},
                              "claims": [{"text": "b", "check": {"best": "y"}}]})
    assert [c.text for c in art.all_claims] == ["a", "b"] and art.all_claims[1].check == {"best": "y"}
    assert Artifact.from_dict({"kind": "table", "claims": [{"text": "b"}]}).all_claims == [Claim("b", {})]
    assert Artifact.from_dict({"kind": "table"}).all_claims == []


def test_unknown_check_key_is_refused(tmp_path):
    from diffreg.errors import InputError
    from diffreg.experiments import load_experiment
    src = (pytest.importorskip("pathlib").Path(__file__).resolve().parents[2] / "experiments" / "dgir.yaml").read_text()
    bad = src.replace("check: {", "check: {bestt: x, ", 1)
    p = tmp_path / "dgir.yaml"
    p.write_text(bad)
    with pytest.raises(InputError, match="bestt"):
        load_experiment(p)


def test_a_check_naming_initial_compares_with_the_value_before_registration():
    """`than: initial` (DiffuseMorph Fig. 7: the generated image is closer to the fixed one than the
    moving image was): the initial row is `<metric>_before` for any metric, lower NMSE is better."""
    from diffreg.report.claims import metric_values
    rows = []
    for i in range(8):
        rows += [{"method": "diffusemorph", "pair": f"p{i}", "label": "all", "metric": "nmse_generated", "value": 0.2 + 0.01 * i},
                 {"method": "diffusemorph", "pair": f"p{i}", "label": "all", "metric": "nmse_generated_before",
                  "value": 0.5 + 0.02 * i}]
    df = pd.DataFrame(rows)
    assert "initial" not in set(metric_values(df, "nmse_generated")["row"])       # only when a check names it
    vals = metric_values(df, "nmse_generated", initial=True)
    assert judge({"metric": "nmse_generated", "better": "diffusemorph", "than": "initial"}, vals).verdict == stats.HOLDS
    assert judge({"metric": "nmse_generated", "better": "initial", "than": "diffusemorph"}, vals).verdict == stats.FAILS


def test_order_and_trend_name_swept_values_as_numbers():
    """A sweep's rows are its values as written by the plan ("1" for 1.0): a check may write 1.0."""
    rows = {"0.2": BASE, "0.6": BASE + 0.03 + NOISE, "1": BASE + 0.06}
    assert judge({"metric": "dice", "order": [0.2, 0.6, 1.0]}, values(rows)).verdict == stats.HOLDS
    assert judge({"metric": "dice", "trend": ["0.2", "0.6", "1.0"], "margin": 0.01}, values(rows)).verdict == stats.HOLDS

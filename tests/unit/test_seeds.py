"""--seeds N: every learned row trained N times (replicate k with seed --seed + k), tables with the
SD over pairs and over seeds apart, claims tested over seeds x pairs."""
import pandas as pd
import pytest

from diffreg.errors import InputError
from diffreg.experiments import load_experiment
from diffreg.planner import Planner
from diffreg.replicates import seed_label, split_seed
from diffreg.report import claims, tables

from .test_planner import DGIR, TOY


def plan(seeds):
    return Planner([load_experiment(DGIR)], TOY, None, set(), "test", seeds).build()


def test_labels_round_trip():
    assert seed_label("2d-dgir-x@t.test", 0) == "2d-dgir-x@t.test"
    assert split_seed(seed_label("2d-dgir-x@t.test", 3)) == ("2d-dgir-x@t.test", 3)
    assert split_seed("ants-syn") == ("ants-syn", 0)


def test_seeds_multiply_trainings_and_keep_replicate_zero():
    one, three = plan(1), plan(3)
    assert len(three.trainings) == 3 * len(one.trainings)
    # replicate 0 is the one-seed run itself: same names, same configs, seed column 0
    assert set(one.trainings) <= set(three.trainings)
    assert sorted(r["seed"] for r in three.trainings.values()) == sorted([0, 1, 2] * len(one.trainings))
    for run, r in three.trainings.items():
        if r["seed"]:
            twin = next(o for o in one.trainings.values() if o["method"] == r["method"] and o["_config"] == r["_config"]
                        and o["train_moving"] == r["train_moving"] and o["dataset"] == r["dataset"])
            assert run != twin["run"]
    learned = [u for u in one.uses if u.status == "run" and "@" in u.label]
    for u in learned:
        reps = [v for v in three.uses if (v.experiment, v.artifact, v.row) == (u.experiment, u.artifact, u.row)]
        if u.artifact in {a for a, s in load_experiment(DGIR).artifacts.items() if s.from_}:
            assert [v.label for v in reps] == [u.label]          # qualitative figures: replicate 0 only
        else:
            # each replicate registers with its own trained network, on the same test pairs
            assert reps[0].label == u.label and [split_seed(v.label)[1] for v in reps] == [0, 1, 2]
            assert {split_seed(v.label)[0].partition("@")[2] for v in reps} == {u.label.partition("@")[2]}
            assert len({v.label.partition("@")[0] for v in reps}) == 3
    # classical rows are not replicated
    classical = [u for u in three.uses if u.status == "run" and "@" in u.label and u.label.split("@")[0]
                 not in three.trainings and "~seed" not in u.label]
    assert all(not any(v.label == seed_label(c.label, 1) for v in three.uses) for c in classical)


def test_seeds_out_of_range():
    with pytest.raises(InputError, match=r"--seeds 0: must be an integer in \[1, 100\]"):
        plan(0)


def metrics(values: dict[str, dict[int, list[float]]], before: float = 0.5) -> pd.DataFrame:
    """Long metrics: method -> seed -> per-pair Dice."""
    rows = []
    for method, by_seed in values.items():
        for seed, vals in by_seed.items():
            for p, v in enumerate(vals):
                base = dict(experiment="e", artifact="t", dataset="d", method=seed_label(method, seed), pair=f"p{p}",
                            label="mean")
                rows += [dict(base, metric="dice", value=v), dict(base, metric="dice_before", value=before)]
    return pd.DataFrame(rows)


def test_table_separates_sd_over_pairs_and_over_seeds():
    # A: pair p has 0.80 + 0.02 p + 0.01 s; seed means 0.82, 0.83, 0.84 (SD 0.01); per-pair means
    # over seeds 0.81, 0.83, 0.85 (SD 0.02). B: one seed.
    a = {s: [0.80 + 0.02 * p + 0.01 * s for p in range(3)] for s in range(3)}
    summary = tables.summarize(metrics({"A": a, "B": {0: [0.6, 0.7, 0.8]}}))
    r = summary.set_index("method")
    assert r.loc["A", "n"] == 3 and r.loc["A", "n_seeds"] == 3 and r.loc["B", "n_seeds"] == 1
    assert r.loc["A", "dice_mean"] == pytest.approx(0.83)
    assert r.loc["A", "dice_sd"] == pytest.approx(0.02)
    assert r.loc["A", "dice_sd_seeds"] == pytest.approx(0.01)
    assert pd.isna(r.loc["B", "dice_sd_seeds"])
    cells = {row[0].text: [c.text for c in row] for row in tables.display_tables(summary)[0].rows}
    assert cells["A"][1:3] == ["3 × 3 seeds", "0.830 ± 0.020 (± 0.010)"]
    assert cells["B"][1:3] == ["3", "0.700 ± 0.100"]


def test_claims_pair_over_seeds_and_pairs():
    a = {s: [0.80 + 0.01 * p + 0.001 * s for p in range(4)] for s in range(3)}
    df = tables.with_seeds(metrics({"A": a, "ants": {0: [0.7] * 4}}))
    v = claims.metric_values(df, "dice")
    # 4 pairs x 3 seeds units; the one-seed row and the initial alignment repeat in every seed's unit
    assert v.groupby("row").size().to_dict() == {"A": 12, "ants": 12, "initial": 12}
    assert set(v.loc[v["row"] == "ants", "pair"]) == set(v.loc[v["row"] == "A", "pair"])
    verdict = claims.judge({"metric": "dice", "best": "A"}, v)
    assert verdict.verdict == "holds"
    line = next(x for x in verdict.lines if x["row"] == "ants")
    assert line["n_paired"] == 12 and line["diff"] == pytest.approx(0.80 + 0.015 + 0.001 - 0.7)


def test_one_seed_keeps_plain_pairs():
    df = tables.with_seeds(metrics({"A": {0: [0.8, 0.9]}, "B": {0: [0.7, 0.8]}}))
    v = claims.metric_values(df, "dice")
    assert set(v["pair"]) == {"p0", "p1"}

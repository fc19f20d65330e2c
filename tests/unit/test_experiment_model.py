"""diffreg.experiment_model: the typed tasks, artifacts, rows and claims, one field per YAML key
with its default, and the one check of --artifacts (the planner's, called by the launch)."""
from __future__ import annotations

from pathlib import Path

import pytest

from diffreg.errors import InputError
from diffreg.experiment_model import CLASSICAL_KEYS, ROW_META, Artifact, Claim, Modalities, Row, Sweep, Task, yaml_keys
from diffreg.experiments import ARTIFACT_KEYS, TASK_KEYS, load_experiment
from diffreg.launch.papers import check_artifacts
from diffreg.planner import select_artifacts

from .test_experiments_schema import error, tiny

DGIR = Path(__file__).resolve().parents[2] / "experiments" / "dgir.yaml"


def test_the_yaml_keys_are_the_fields():
    assert ARTIFACT_KEYS == {"kind", "title", "tasks", "test", "runs", "profiles", "columns", "rows", "claim",
                             "claims", "metrics", "sweep", "values", "paper", "from", "function", "settings",
                             "measures", "pair", "show", "plot", "note"}
    assert TASK_KEYS == {"ndim", "dataset", "train_dataset", "train", "test", "tests", "pairing", "pairs", "labels",
                         "label_unions", "scored_labels", "trajectory", "landmarks", "score_on", "profiles", "note"}
    assert ROW_META == {"name", "loss", "method", "baseline", "preset", "train", "status", "note"}
    assert CLASSICAL_KEYS < ROW_META
    assert yaml_keys(Claim) == {"text", "check"} and yaml_keys(Sweep) == {"param", "fixed"}


def test_defaults_in_one_place():
    art = Artifact.from_dict({"kind": "figure", "from": "table1", "runs": ["a"]})
    assert art.show == "registration" and art.from_ == ["table1"] and art.runs == ["a"] and art.row_names == ["a"]
    assert art.tasks == {} and art.values == {} and art.settings == {} and art.metrics is None
    assert art.all_claims == [] and art.sweep is None and art.title is None
    table = Artifact.from_dict({"kind": "table", "runs": [{"name": "x", "loss": "l", "lr": 0.1, "iterations": 3}]})
    assert table.from_ is None and table.show == "registration"
    (row,) = table.runs
    # the row keys are fields; every other key is a method setting, in the YAML's order
    assert row == Row(name="x", loss="l", settings={"lr": 0.1, "iterations": 3})
    assert list(row.settings) == ["lr", "iterations"] and row.method is None and row.train is None
    assert Claim.from_dict({"text": "t"}) == Claim("t", {})
    task = Task.from_dict({"ndim": 2, "dataset": "toy", "train": {"moving": "be", "fixed": "be"}, "pairs": None})
    assert (task.pairing, task.landmarks, task.tests, task.profiles, task.label_unions) == ("inter", False, {}, {}, {})
    assert task.train == Modalities("be", "be") and Row.from_dict({"train": {"moving": "a", "fixed": "b"}}).train.fixed == "b"
    assert task.test is None and task.pairs is None and task.train_dataset is None and task.scored_labels is None


def test_sweep_row_routes_row_keys_out_of_the_settings():
    sw = Sweep("loss", {"lr": 0.001, "method": "voxelmorph"})
    row = sw.row("mse")
    assert row.loss == "mse" and row.method == "voxelmorph" and row.settings == {"lr": 0.001}
    assert Sweep("lambda_reg", {"lr": 0.001}).row(0.5).settings == {"lr": 0.001, "lambda_reg": 0.5}


def test_parsed_experiment_is_typed():
    exp = load_experiment(DGIR)
    assert all(isinstance(a, Artifact) for a in exp.artifacts.values())
    assert all(isinstance(t, Task) for t in exp.tasks.values()) and exp.tasks["toy_3d"].ndim == 3
    assert all(isinstance(r, Row) for r in exp.artifacts["table1"].runs)
    assert all(isinstance(c, Claim) for a in exp.artifacts.values() for c in a.all_claims)


@pytest.mark.parametrize("edit,message", [
    (lambda d: d["tasks"]["t2d"].update(datset="toy"),
     "tasks.t2d.datset: unknown key (known: " + ", ".join(sorted(TASK_KEYS)) + ")"),
    (lambda d: d["artifacts"]["tab"].update(colums=[]),
     "artifacts.tab.colums: unknown key (known: " + ", ".join(sorted(ARTIFACT_KEYS)) + ")"),
    (lambda d: d["artifacts"]["sw"]["sweep"].update(fixd={}), "artifacts.sw.sweep.fixd: unknown key (known: fixed, param)"),
    (lambda d: d["artifacts"]["tab"].update(claim={"text": "x", "chek": {}}),
     "artifacts.tab.claim.chek: unknown key (known: check, text)"),
    (lambda d: d["artifacts"]["tab"]["runs"][2].update(lr=1),
     "artifacts.tab.runs.syn.lr: unknown key for a classical row (known: baseline, name, note, preset, status)"),
])
def test_a_bad_key_is_refused_with_the_known_keys(tmp_path, edit, message):
    doc = tiny()
    edit(doc)
    msg = error(tmp_path, doc)
    assert msg.endswith(message), msg


def test_one_selection_check_for_plan_and_launch():
    exp = load_experiment(DGIR)
    rows = exp.artifacts["table1"].row_names
    chosen, picked = select_artifacts([exp], [f"dgir:table1:{rows[0]}+{rows[1]}", "fig6"])
    assert picked == {("dgir", "table1"): {rows[0], rows[1]}}
    assert chosen == {("dgir", "table1"), ("dgir", "fig6"), ("dgir", "table2_be_nbe"), ("dgir", "table2_be_be")}
    assert select_artifacts([exp], ["all", " "]) == (None, {})
    assert check_artifacts("dgir:table1,fig6", [exp]) == ["dgir:table1", "fig6"]
    for bad, msg in (("dgir:table9", "'dgir:table9' is no paper run nor an artifact of one (papers: dgir; give "
                                     "PAPER, PAPER:ARTIFACT, PAPER:ARTIFACT:ROW+ROW or ARTIFACT)"),
                     ("dgir:table1:nope", f"'dgir:table1:nope': nope not a row of dgir:table1 (rows: {', '.join(rows)})")):
        for check in (lambda: select_artifacts([exp], [bad]), lambda: check_artifacts(bad, [exp])):
            with pytest.raises(InputError) as err:
                check()
            assert str(err.value) == f"Parameter --artifacts: {msg}"

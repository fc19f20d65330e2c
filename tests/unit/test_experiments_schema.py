"""diffreg.experiments: the one reader of experiment YAMLs; every mistake names the file and key."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from diffreg.errors import InputError
from diffreg.experiments import find_experiments, load_experiment, paper_yamls
from diffreg.methods import METHODS
from diffreg.report import tables

DGIR = Path(__file__).resolve().parents[2] / "experiments" / "dgir.yaml"

TINY = textwrap.dedent("""\
    paper: {name: "Tiny (2025)"}
    method: voxelmorph
    stages:
      feats: {kind: adm_natural_images, param: feats_ckpt, profiles: {test: {iterations: 3}}}
    files:
      w: {note: a user file}
    profiles:
      test: {2d: {iterations: 5}}
    tasks:
      t2d: {ndim: 2, dataset: toy, train: {moving: be, fixed: be}}
    losses:
      l: {lambda_reg: 0.5}
    artifacts:
      tab:
        kind: table
        tasks: {toy: t2d}
        runs:
          - {name: a, loss: l}
          - {name: b, lr: 0.01}
          - {name: syn, baseline: syn, preset: test}
        rows: {a: {dice: 0.8}}
      sw:
        kind: figure
        tasks: {toy: t2d}
        sweep: {param: lambda_reg, fixed: {lr: 0.001}}
        values: {test: [0.1, 0.2, 0.3]}
    """)


def write(tmp_path: Path, doc: dict | str, name: str = "tiny") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False))
    return path


def tiny() -> dict:
    return yaml.safe_load(TINY)


def error(tmp_path: Path, doc: dict) -> str:
    path = write(tmp_path, doc)
    with pytest.raises(InputError) as exc:
        load_experiment(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}: "), msg
    return msg[len(str(path)) + 2:]


def test_tiny_and_dgir_load():
    exp = load_experiment(DGIR)
    assert exp.name == "dgir" and exp.method == "dgir" and exp.title.startswith("DGIR")
    assert exp.stages["diffusion_features"]["param"] == "dgir_checkpoint"
    assert exp.losses["diffusion_lncc"]["feature_checkpoint"] == {"stage": "diffusion_features"}
    assert exp.artifacts["fig1"].function == "dgir.similarity_heatmaps"
    assert exp.paper_rows()["table1"]["diffusion_lncc"]["dice"] == 0.9611
    assert list(exp.artifacts) == ["table1", "table2_be_nbe", "table2_be_be", "fig1", "fig2", "fig4", "fig5a",
                                   "fig5b", "fig6"]


def test_unknown_setting_names_the_yaml_path_for_every_method(tmp_path):
    names = METHODS.names()
    assert {"voxelmorph", "dgir"} <= set(names)
    for m in names:
        doc = tiny()
        doc["method"] = m
        doc["profiles"] = {}
        doc["losses"] = {}
        doc["artifacts"]["tab"]["runs"] = [{"name": "a", "not_a_setting": 1}]
        del doc["artifacts"]["sw"]
        msg = error(tmp_path, doc)
        assert msg.startswith("artifacts.tab.runs.a.not_a_setting: unknown setting"), msg
        assert f"for method {m}" in msg


def test_unknown_setting_in_sweeps_presets_and_profiles(tmp_path):
    doc = tiny()
    doc["artifacts"]["sw"]["sweep"]["fixed"]["lamda_reg"] = 1.0
    assert error(tmp_path, doc).startswith("artifacts.sw.sweep.fixed.lamda_reg: unknown setting")
    doc = tiny()
    doc["artifacts"]["sw"]["sweep"]["param"] = "lamda_reg"
    assert error(tmp_path, doc).startswith("artifacts.sw.sweep.param: unknown setting")
    doc = tiny()
    doc["losses"]["l"]["lamda_reg"] = 1.0
    assert error(tmp_path, doc).startswith("losses.l.lamda_reg: unknown setting")
    doc = tiny()
    doc["profiles"]["test"]["2d"]["iteratons"] = 3
    assert error(tmp_path, doc).startswith("profiles.test.2d.iteratons: unknown setting")


def test_unknown_names(tmp_path):
    cases = [
        (lambda d: d.update(method="voxelmorf"), "method: unknown method 'voxelmorf'"),
        (lambda d: d["artifacts"]["tab"]["runs"][1].update(method="nope"), "artifacts.tab.runs.b.method: unknown method"),
        (lambda d: d["artifacts"]["tab"]["runs"][0].update(loss="ll"), "artifacts.tab.runs.a.loss: unknown loss preset 'll'"),
        (lambda d: d["artifacts"]["tab"]["runs"][1].update(lr={"stage": "featz"}), "artifacts.tab.runs.b.lr: unknown stage 'featz'"),
        (lambda d: d["artifacts"]["tab"]["runs"][1].update(lr={"param": "v"}), "artifacts.tab.runs.b.lr: unknown file parameter 'v'"),
        (lambda d: d.update(extra=1), "extra: unknown key"),
        (lambda d: d["artifacts"]["tab"].update(colums=[]), "artifacts.tab.colums: unknown key"),
        (lambda d: d["tasks"]["t2d"].update(datset="toy"), "tasks.t2d.datset: unknown key"),
        (lambda d: d["tasks"]["t2d"].update(dataset="Toy Data"), "tasks.t2d.dataset: dataset 'Toy Data'"),
        (lambda d: d["tasks"]["t2d"].update(ndim=4), "tasks.t2d.ndim: expected 2 or 3"),
        (lambda d: d["artifacts"]["tab"].update(tasks={"toy": "t3d"}), "artifacts.tab.tasks.toy: unknown task 't3d'"),
        (lambda d: d["artifacts"]["tab"].update(kind="tabel"), "artifacts.tab.kind: must be 'table' or 'figure'"),
        (lambda d: d["artifacts"]["tab"].update(profiles={"test": ["zz"]}), "artifacts.tab.profiles.test: unknown row 'zz'"),
        (lambda d: d["artifacts"]["tab"].update(profiles={"quick": ["a"]}), "artifacts.tab.profiles.quick: unknown key"),
        (lambda d: d["artifacts"]["tab"]["runs"][2].update(preset="fast"), "artifacts.tab.runs.syn.preset: unknown preset 'fast'"),
        (lambda d: d["artifacts"]["tab"]["runs"][2].update(baseline="ants"), "artifacts.tab.runs.syn.baseline: unknown baseline"),
        (lambda d: d["artifacts"]["tab"]["runs"][2].update(lr=1), "artifacts.tab.runs.syn.lr: unknown key for a classical row"),
        (lambda d: d["stages"]["feats"].update(kind="adm_imagenet"), "stages.feats.kind: unknown stage kind 'adm_imagenet'"),
        (lambda d: d["artifacts"].update(f={"kind": "figure", "tasks": {"toy": "t2d"}, "function": "nope.fig"}),
         "artifacts.f.function: unknown figure function 'nope.fig'"),
        (lambda d: d["artifacts"].update(q={"kind": "figure", "from": "tab", "runs": ["zz"]}),
         "artifacts.q.runs: unknown row 'zz'"),
    ]
    for change, expected in cases:
        doc = tiny()
        change(doc)
        msg = error(tmp_path, doc)
        assert msg.startswith(expected), (expected, msg)


def test_not_implemented_rows_may_name_unknown_methods(tmp_path):
    doc = tiny()
    doc["artifacts"]["tab"]["runs"].append({"name": "x", "method": "unigradicon", "status": "not_implemented",
                                            "weights": {"param": "w"}})
    assert load_experiment(write(tmp_path, doc)).artifacts["tab"].runs[-1].method == "unigradicon"


def test_find_experiments(tmp_path):
    assert find_experiments(["dgir"]) == [DGIR]
    assert find_experiments(["none"]) == []
    assert DGIR in find_experiments(["all"])
    own = write(tmp_path, TINY)
    assert find_experiments([f"dgir,{own}"]) == [DGIR, own]
    with pytest.raises(InputError, match="no .*nope.yaml"):
        find_experiments(["nope"])


def test_paper_numbers_read_through_the_schema_module(tmp_path):
    paper = tables.load_paper(write(tmp_path, TINY))
    assert paper.name == "Tiny (2025)" and paper.rows == {"tab": {"a": {"dice": 0.8}}}


@pytest.mark.parametrize("path", paper_yamls(DGIR.parent), ids=lambda p: p.stem)
def test_every_paper_yaml_loads_and_plans_under_every_profile(path):
    """Each experiments/*.yaml is valid and plans on the embedded data, with and without its files."""
    from diffreg.planner import Planner

    exp = load_experiment(path)
    for profile in ("test", "test_full", "full"):
        for given in (set(), set(exp.files)):
            plan = Planner([exp], {"toy": {2, 3}}, given=given, profile=profile).build()
            assert plan.uses, f"{path.name} ({profile}) plans no row"
            assert all(u.status in {"run", "needs_weights", "not_implemented", "skipped"} for u in plan.uses)


def test_task_pairs_name_a_pairing_of_the_datasets_file(tmp_path):
    doc = tiny()
    doc["tasks"]["t2d"]["pairs"] = "atlas_be"                 # experiments/pairs/toy.yaml has it
    load_experiment(write(tmp_path, doc))
    doc["tasks"]["t2d"]["pairs"] = "nope"
    assert "tasks.t2d.pairs: no pairing 'nope' in experiments/pairs/toy.yaml (known: be_to_nbe" in error(tmp_path, doc)
    doc["tasks"]["t2d"].update(dataset="mydata", pairs="x")
    assert "tasks.t2d.pairs: no pairing file experiments/pairs/mydata.yaml" in error(tmp_path, doc)


def test_task_profiles_and_show_are_checked(tmp_path):
    doc = tiny()
    doc["tasks"]["t2d"]["profiles"] = {"huge": {"iterations": 9}}
    assert "tasks.t2d.profiles" in error(tmp_path, doc) and "huge" in error(tmp_path, doc)
    doc = tiny()
    doc["artifacts"]["q"] = {"kind": "figure", "from": "tab", "runs": ["a"], "show": "movie"}
    assert "artifacts.q.show: 'movie' (known: registration, trajectory, generated)" in error(tmp_path, doc)


def test_a_dashed_dataset_finds_its_pairing_file():
    """Dataset neurite-oasis (the adapter's name) keeps its pairings in neurite_oasis.yaml."""
    from diffreg.experiments import pairs_file
    assert pairs_file("neurite-oasis").name == "neurite_oasis.yaml" and pairs_file("neurite-oasis").is_file()

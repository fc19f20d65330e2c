"""The planner: shared trainings, every setting in the config, dependencies, the main path, the
statuses of rows that cannot run, and 2D slices of 3D data."""
import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from diffreg.cli import main
from diffreg.errors import InputError
from diffreg.experiments import load_experiment
from diffreg.planner import COLUMNS, Planner, main_experiment, parse_set

from .test_experiments_schema import TINY, tiny, write

DGIR = Path(__file__).resolve().parents[2] / "experiments" / "dgir.yaml"
TOY = {"toy": {2, 3}}


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def dgir_plan(profile="test_full", datasets=None, given=(), modalities=None):
    return Planner([load_experiment(DGIR)], datasets or TOY, modalities, set(given), profile).build()


def uses_of(plan, experiment="dgir"):
    return {(u.artifact, u.row): u for u in plan.uses if u.experiment == experiment}


def run_of(label: str) -> str:
    return label.split("@")[0]


def test_dgir_test_full_plan_shares_trainings_between_artifacts():
    plan = dgir_plan()
    uses = uses_of(plan)
    # Table 1's Diffusion+LNCC (block 29, t 50) is also Fig. 5b's t = 50 point and a row of Fig. 4
    assert uses[("table1", "diffusion_lncc")].label == uses[("fig5b", "t_50")].label \
        == uses[("fig4", "diffusion_lncc")].label != ""
    # Table 2's two test sets register the same trained network on different pairs
    be_nbe, be_be = uses[("table2_be_nbe", "dgir_tr_be_nbe")].label, uses[("table2_be_be", "dgir_tr_be_nbe")].label
    assert be_nbe != be_be and run_of(be_nbe) == run_of(be_be)
    regs = plan.registrations
    assert regs[("dgir", be_nbe)]["fixed"] == "nbe" and regs[("dgir", be_be)]["fixed"] == "be"
    assert be_nbe.endswith("@toy_3d.be_nbe")
    # rows that cannot run say why
    assert uses[("table1", "vgg_lncc")].status == "needs_weights"
    assert uses[("table1", "vgg_lncc")].note == "needs weights: give --dgir_vgg_weights"
    assert uses[("table1", "seg_guided_mmreg")].status == "not_implemented"
    assert uses[("table2_be_nbe", "unigradicon")].status == "needs_weights"
    assert "--unigradicon_weights" in uses[("table2_be_nbe", "unigradicon")].note
    # every training is used by some row, and the sweeps have one distinct run per value
    used = {run_of(u.label) for u in plan.uses if u.status == "run" and "@" in u.label}
    assert used == set(plan.trainings)
    doc = load_experiment(DGIR)
    values = doc.artifacts["fig5a"].values["test_full"]
    sweep = [u for u in plan.uses if u.artifact == "fig5a"]
    assert len(sweep) == len(values) and len({run_of(u.label) for u in sweep}) == len(values)
    for u in sweep:
        cfg = plan.trainings[run_of(u.label)]["_config"]
        assert cfg["block"] == int(u.value) and cfg["t"] == 60 and cfg["loss"] == "diffusion"
    # the rows' settings and the profile's lengths per dimensionality reach the configs
    cfg = plan.trainings[run_of(be_nbe)]["_config"]
    assert cfg["block"] == 11 and cfg["t"] == 50 and cfg["loss"] == "diffusion"
    assert cfg["iterations"] == doc.profiles["test_full"]["3d"]["iterations"] == 150
    assert cfg["ae_iterations"] == 300
    (stage,) = plan.stages
    assert stage.startswith("diffusion_features-") and cfg["feature_checkpoint"] == {"stage": stage}
    assert plan.trainings[run_of(be_nbe)]["needs"] == f"feature_checkpoint=stage:{stage}"
    assert plan.stages[stage]["_config"] == {"width": 32, "size": 32, "batch": 8, "iterations": 1500}
    lncc = plan.trainings[run_of(uses[("table1", "lncc")].label)]
    assert lncc["_config"] == {"loss": "lncc", "iterations": 300, "ae_iterations": 300, "network": "small"} \
            and lncc["needs"] == ""
    assert (lncc["train_moving"], lncc["train_fixed"], lncc["dataset"]) == ("t2", "nbe", "toy")
    # Fig. 1 and 2: computed on the toy 2D task's test modalities, on the same feature model
    figs = {f["artifact"]: f for f in plan.figures.values()}
    assert figs["fig1"]["function"] == "dgir.similarity_heatmaps"
    assert (figs["fig1"]["moving"], figs["fig1"]["fixed"]) == ("t2", "nbe")
    assert figs["fig2"]["_config"]["keypoints"] == 12 and figs["fig2"]["needs"] == f"feature_checkpoint=stage:{stage}"
    assert uses[("fig1", "fig1")].label == figs["fig1"]["figure"]


def test_dgir_test_profile_rows():
    plan = dgir_plan("test", datasets={"toy": {2}})
    uses = uses_of(plan)
    assert uses[("table1", "mse")].status == "skipped" and uses[("table1", "mse")].note == "not in the test profile"
    assert uses[("table2_be_nbe", "dgir_tr_be_nbe")].note == "needs 3D data for task toy_3d"
    ran = sorted(k for k, u in uses.items() if u.status == "run")
    assert ran == [("fig1", "fig1"), ("fig2", "fig2"), ("fig4", "diffusion_lncc"), ("fig4", "lncc"),
                   ("fig5a", "block_11"), ("fig5a", "block_29"), ("fig5b", "t_50"), ("fig5b", "t_600"),
                   ("table1", "diffusion_lncc"), ("table1", "lncc")]
    # Table 1's diffusion row is Fig. 5b's t = 50: 5 trainings (lncc, diffusion x {t50, t600, b11 t60, b29 t60})
    assert len(plan.trainings) == 5
    assert all(t["_config"]["iterations"] == 100 and t["ndim"] == 2 for t in plan.trainings.values())


def test_given_files_replace_stages_and_train_rows():
    plan = dgir_plan(datasets={"toy": {2}}, given={"dgir_vgg_weights", "dgir_checkpoint", "unigradicon_weights"})
    uses = uses_of(plan)
    vgg = uses[("table1", "vgg_lncc")]
    assert vgg.status == "run"
    run = plan.trainings[run_of(vgg.label)]
    assert run["_config"]["vgg_weights"] == {"param": "dgir_vgg_weights"}
    assert run["needs"] == "vgg_weights=param:dgir_vgg_weights"
    # the user's checkpoint replaces the pretraining stage, which is then not planned
    diff = plan.trainings[run_of(uses[("table1", "diffusion_lncc")].label)]
    assert diff["_config"]["feature_checkpoint"] == {"param": "dgir_checkpoint"}
    assert diff["needs"] == "feature_checkpoint=param:dgir_checkpoint"
    assert plan.stages == {}
    assert all(f["needs"] == "feature_checkpoint=param:dgir_checkpoint" for f in plan.figures.values())
    # Table 2 is 3D: without 3D data its rows, uniGradICON's too, are skipped
    assert uses[("table2_be_nbe", "unigradicon")].status == "skipped"
    assert uses[("table2_be_nbe", "lncc_tr_be_be")].status == "skipped"
    assert not any(r["ndim"] == 3 for r in plan.trainings.values())


def test_unigradicon_row_runs_with_its_weights_and_needs_them_otherwise():
    given = dgir_plan(datasets={"toy": {3}}, given={"unigradicon_weights"}, profile="test_full")
    u = uses_of(given)[("table2_be_nbe", "unigradicon")]
    assert u.status == "run"
    run = given.trainings[run_of(u.label)]
    assert run["method"] == "unigradicon" and run["_config"]["weights"] == {"param": "unigradicon_weights"}
    missing = uses_of(dgir_plan(datasets={"toy": {3}}, profile="test_full"))[("table2_be_nbe", "unigradicon")]
    assert missing.status == "needs_weights" and "--unigradicon_weights" in missing.note


def test_stage_planned_only_when_a_planned_row_needs_it(tmp_path):
    doc = tiny()
    doc["losses"]["f"] = {"lambda_reg": 0.1, "similarity_kwargs": {"stage": "feats"}}
    doc["artifacts"]["tab"]["runs"].append({"name": "c", "loss": "f"})
    doc["artifacts"]["tab"]["profiles"] = {"test": ["a", "b", "syn"], "test_full": ["a", "b", "syn", "c"]}
    exp = load_experiment(write(tmp_path, doc))
    assert Planner([exp], TOY, profile="test").build().stages == {}
    plan = Planner([exp], TOY, profile="test_full").build()
    assert len(plan.stages) == 1
    (row,) = plan.stages.values()
    assert row["kind"] == "adm_natural_images" and row["data"] == "no" and row["dataset"] == ""


def test_sweeps_carry_every_setting(tmp_path):
    for param, values in (("lambda_reg", [0.1, 0.2, 0.3]), ("lr", [1e-4, 1e-3, 1e-2]), ("batch_size", [1, 2, 4])):
        doc = tiny()
        doc["artifacts"]["sw"]["sweep"] = {"param": param, "fixed": {"loss": "l", "iterations": 7}}
        doc["artifacts"]["sw"]["values"] = {"test": values}
        plan = Planner([load_experiment(write(tmp_path, doc))], TOY, profile="test").build()
        sweep = [u for u in plan.uses if u.artifact == "sw"]
        assert [u.value for u in sweep] == [str(v) for v in values]
        configs = [plan.trainings[run_of(u.label)]["_config"] for u in sweep]
        assert len({json.dumps(c, sort_keys=True) for c in configs}) == 3
        for v, cfg in zip(values, configs):
            assert cfg[param] == v and cfg["iterations"] == 7      # the row's setting over the profile's 5
            if param != "lambda_reg":
                assert cfg["lambda_reg"] == 0.5                    # the loss preset's


def test_two_experiments_share_an_identical_training(tmp_path):
    a = load_experiment(write(tmp_path, TINY, "a"))
    b = load_experiment(write(tmp_path, TINY, "b"))
    one = Planner([a], TOY, profile="test").build()
    both = Planner([a, b], TOY, profile="test").build()
    assert set(both.trainings) == set(one.trainings)
    assert {k[0] for k in both.registrations} == {"a", "b"}
    assert len(both.registrations) == 2 * len(one.registrations)
    # each experiment evaluates its registrations with its own eval config
    evals = {r["experiment"]: r["eval_config"] for r in both.registrations.values()}
    assert both.evals[evals["a"]]["experiment"] == "a" and both.evals[evals["b"]]["experiment"] == "b"
    with pytest.raises(InputError, match="named twice"):
        Planner([a, a], TOY)


def test_dataset_choice(tmp_path):
    doc = tiny()
    doc["tasks"]["real"] = {"ndim": 2, "dataset": "knee", "train": {"moving": "dxa", "fixed": "xray"},
                            "label_unions": {"bone": [1, 2]}}
    doc["artifacts"]["tab"]["tasks"] = {"real": "real", "toy": "t2d"}
    doc["artifacts"]["tab"]["metrics"] = ["dice"]
    exp = load_experiment(write(tmp_path, doc))

    def labels(datasets, modalities=None):
        plan = Planner([exp], datasets, modalities, profile="test").build()
        return plan, {u.row: u for u in plan.uses if u.artifact == "tab"}

    plan, u = labels({"knee": {2}, "toy": {2}})
    assert u["a"].label.endswith("@real.test") and plan.registrations[("tiny", u["a"].label)]["dataset"] == "knee"
    reg = plan.registrations[("tiny", u["a"].label)]
    assert plan.evals[reg["eval_config"]] == {"experiment": "tiny", "dataset": "knee",
                                              "label_unions": {"bone": [1, 2]}, "metrics": ["dice"]}
    _, u = labels({"input": {2}, "toy": {2}})          # the legacy --input stands in for the real data
    assert u["a"].label.endswith("@real.test")
    _, u = labels({"toy": {2}})
    assert u["a"].label.endswith("@t2d.test") and u["syn"].label == "syn-test@t2d.test"
    _, u = labels({"oasis": {3}})
    assert u["a"].status == "skipped" and u["a"].note == "needs dataset knee"
    _, u = labels({"knee": {2}}, {"knee": {"dxa"}})
    assert u["a"].status == "skipped" and u["a"].note == "needs modality xray for task real"


def test_main_path_labels_and_settings(tmp_path):
    assert parse_set(["iterations=600", "lr=0.001", "similarity=lncc", "inter_subject=false"]) == {
        "iterations": 600, "lr": 0.001, "similarity": "lncc", "inter_subject": False}
    exp = main_experiment(["voxelmorph", "dgir"], ["syn=test", "niftyreg"], {"iterations": 600}, "toy", 3, "be", "be",
                          "intra")
    plan = Planner([exp, load_experiment(DGIR)], TOY, profile="test").build()
    main_regs = {k[1]: r for k, r in plan.registrations.items() if k[0] == "main"}
    assert set(main_regs) == {"voxelmorph", "dgir", "syn-test", "niftyreg-default"}
    assert main_regs["syn-test"]["kind"] == "classical" and main_regs["syn-test"]["preset"] == "test"
    vm = plan.trainings[main_regs["voxelmorph"]["run"]]
    assert vm["_config"] == {"iterations": 600, "inter_subject": False} and vm["ndim"] == 3
    assert vm["run"].startswith("3d-voxelmorph-")
    assert {u.label for u in plan.uses if u.experiment == "main"} == set(main_regs)
    assert plan.experiments[0] == {"experiment": "main", "yaml": ""}
    with pytest.raises(InputError, match="--main-set lamda: unknown setting"):
        main_experiment(["voxelmorph"], [], {"lamda": 1}, "toy", 2, "be", "be")
    with pytest.raises(InputError, match="--main-set similarity: unknown setting.*dgir"):
        main_experiment(["voxelmorph", "dgir"], [], {"similarity": "lncc"}, "toy", 2, "be", "be")
    with pytest.raises(InputError, match="unknown preset 'fast'"):
        main_experiment([], ["syn=fast"], {}, "toy", 2, "be", "be")


def test_written_plan_files_and_cli(tmp_path):
    out = tmp_path / "plan"
    assert main(["plan", "--papers", "dgir", "--profile", "test", "--ndims", "toy=2", "--main-methods", "voxelmorph",
                 "--main-baselines", "syn=test,niftyreg=test", "--main-set", "iterations=600", "--out", str(out)]) == 0
    tables = {name: _rows(out / name) for name in COLUMNS}
    for name, cols in COLUMNS.items():
        assert (out / name).read_text().splitlines()[0] == ",".join(cols)
    trainings, regs, uses = tables["trainings.csv"], tables["registrations.csv"], tables["uses.csv"]
    configs = out / "configs"
    assert all((configs / r["config"]).is_file() for r in trainings + tables["stages.csv"] + tables["figures.csv"])
    assert all((configs / r["eval_config"]).is_file() for r in regs)
    assert {u["label"] for u in uses if u["status"] == "run" and u["artifact"] not in ("fig1", "fig2")} \
        <= {r["label"] for r in regs}
    assert {r["run"] for r in regs if r["kind"] == "learned"} == {t["run"] for t in trainings}
    assert {"experiment": "dgir", "artifact": "table1", "row": "mse", "label": "", "status": "skipped",
            "note": "not in the test profile", "param": "", "value": ""} in uses
    main_rows = [(r["label"], r["kind"]) for r in regs if r["experiment"] == "main"]
    assert main_rows == [("voxelmorph", "learned"), ("syn-test", "classical"), ("niftyreg-test", "classical")]
    vm = next(t for t in trainings if t["method"] == "voxelmorph")
    assert json.loads((configs / vm["config"]).read_text()) == {"iterations": 600}
    assert (vm["train_moving"], vm["train_fixed"], vm["ndim"]) == ("be", "be", "2")
    dgir = [t for t in trainings if t["method"] == "dgir"]
    assert all(json.loads((configs / t["config"]).read_text())["iterations"] == 100 for t in dgir)
    assert [r["experiment"] for r in tables["experiments.csv"]] == ["main", "dgir"]
    (stage,) = tables["stages.csv"]
    assert json.loads((configs / stage["config"]).read_text())["width"] == 32
    run = json.loads((out / "run.json").read_text())
    assert run["command"] == "plan"


def test_cli_datasets_from_images(tmp_path, capsys):
    img = tmp_path / "sub-1_be.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.float32), np.eye(4)), str(img))
    out = tmp_path / "plan"
    assert main(["plan", "--papers", "dgir", "--profile", "test", "--dataset", "toy", str(img), "be,nbe,t2",
                 "--main-baselines", "syn=test", "--out", str(out)]) == 0
    assert "toy (2D/3D)" in capsys.readouterr().out
    regs = _rows(out / "registrations.csv")
    assert any(r["ndim"] == "3" and r["experiment"] == "dgir" for r in regs)
    assert next(r for r in regs if r["experiment"] == "main")["ndim"] == "3"   # the volumes themselves
    # toy modalities known: a row needing another one is skipped
    assert main(["plan", "--papers", "dgir", "--profile", "test", "--dataset", "toy", str(img), "be,nbe",
                 "--out", str(out)]) == 0
    uses = {(u["artifact"], u["row"]): u for u in _rows(out / "uses.csv")}
    assert uses[("table1", "lncc")]["note"] == "needs modality t2 for task toy_2d"
    assert uses[("table2_be_nbe", "dgir_tr_be_nbe")]["status"] == "run"
    # no main path, no experiment: an empty plan
    assert main(["plan", "--papers", "none", "--ndims", "toy=2", "--out", str(out)]) == 0
    assert _rows(out / "experiments.csv") == []
    assert main(["plan", "--papers", "none", "--ndims", "toy=4", "--out", str(out)]) == 2
    assert main(["plan", "--ndims", "toy=2", "--main-methods", "voxelmorph", "--main-set", "lamda=1",
                 "--out", str(out)]) == 2


def test_unknown_profile_is_an_input_error():
    with pytest.raises(InputError):
        Planner([load_experiment(DGIR)], TOY, profile="quick")


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


def test_train_dataset_trains_on_one_dataset_and_tests_on_another(tmp_path):
    """LDM-Morph Table 2: trained on ECHO, tested on CAMUS. The training is the ECHO task's own
    (shared), the registration's pairs come from CAMUS, under the view's alias of camus.yaml."""
    doc = tiny()
    doc["tasks"] = {
        "echo": {"ndim": 2, "dataset": "echonet", "pairing": "intra", "pairs": "ldm_morph_ed_to_es",
                 "train": {"moving": "ed", "fixed": "es"}},
        "cross": {"ndim": 2, "dataset": "camus-2ch", "train_dataset": "echonet", "pairing": "intra",
                  "pairs": "ldm_morph_ed_to_es", "train": {"moving": "ed", "fixed": "es"}}}
    doc["artifacts"] = {
        "t1": {"kind": "table", "tasks": {"real": "echo"}, "runs": [{"name": "a", "loss": "l"}]},
        "t2": {"kind": "table", "tasks": {"real": "cross"}, "runs": [{"name": "a", "loss": "l"}]}}
    exp = load_experiment(write(tmp_path, doc))
    plan = Planner([exp], {"echonet": {2}, "camus-2ch": {2}}, profile="test").build()
    u = {u.artifact: u for u in plan.uses}
    assert u["t1"].status == u["t2"].status == "run"
    assert run_of(u["t1"].label) == run_of(u["t2"].label)       # one training, on ECHO
    assert [t["dataset"] for t in plan.trainings.values()] == ["echonet"]
    cross = plan.registrations[("tiny", u["t2"].label)]
    assert cross["dataset"] == "camus-2ch" and cross["pairs"] == "camus/ldm_morph_ed_to_es"
    # without the training dataset the row says which dataset it needs
    plan = Planner([exp], {"camus-2ch": {2}}, profile="test").build()
    u = {u.artifact: u for u in plan.uses}
    assert u["t2"].status == "skipped" and u["t2"].note == "needs dataset echonet (the training data of task cross)"
    # the training dataset lacks a modality: named with its dataset
    plan = Planner([exp], {"echonet": {2}, "camus-2ch": {2}}, {"echonet": {"ed"}, "camus-2ch": {"ed", "es"}},
                   profile="test").build()
    u = {u.artifact: u for u in plan.uses}
    assert u["t2"].note == "needs modality es of echonet for task cross"


def test_dataset_aliases_find_their_pairing_file():
    from diffreg.experiments import known_datasets, pairs_file
    assert {"camus", "camus-2ch", "camus-4ch"} <= known_datasets()
    assert pairs_file("camus-4ch").name == "camus.yaml" and pairs_file("neurite-oasis").name == "neurite_oasis.yaml"
    assert pairs_file("nope").name == "nope.yaml"      # not found: the name the error message gives


def test_artifacts_selection_plans_only_the_chosen_tables():
    exp = load_experiment(DGIR)
    plan = Planner([exp], TOY, profile="test", artifacts=["dgir:table1"]).build()
    u = uses_of(plan)
    assert {a for (a, _), x in u.items() if x.status != "skipped"} == {"table1"}
    assert u[("table2_be_nbe", "dgir_tr_be_nbe")].note == "not selected (--artifacts)"
    assert {r["ndim"] for r in plan.trainings.values()} == {2}
    # a qualitative figure brings its tables; a bare artifact name, every paper that has it
    plan = Planner([exp], TOY, profile="test", artifacts=["fig6"]).build()
    u = uses_of(plan)
    assert {a for (a, _), x in u.items() if x.status == "run"} == {"fig6", "table2_be_nbe", "table2_be_be"}
    assert Planner([exp], TOY, profile="test", artifacts=["dgir"]).build().uses == dgir_plan("test").uses
    # rows of a table: PAPER:ARTIFACT:ROW+ROW runs those, lists the others as not selected
    rows = exp.artifacts["table1"].row_names
    plan = Planner([exp], TOY, profile="test", artifacts=[f"dgir:table1:{rows[0]}+{rows[-1]}"]).build()
    u = uses_of(plan)
    assert {r for (a, r), x in u.items() if a == "table1" and x.status != "skipped"} <= {rows[0], rows[-1]}
    assert all(u[("table1", r)].note == "not selected (--artifacts)" for r in rows[1:-1])
    with pytest.raises(InputError, match="nope not a row of dgir:table1"):
        Planner([exp], TOY, profile="test", artifacts=["dgir:table1:nope"])
    for bad in ("dgir:nope", "nope", "x:table1"):
        with pytest.raises(InputError) as err:
            Planner([exp], TOY, profile="test", artifacts=[bad])
        assert str(err.value) == (f"Parameter --artifacts: '{bad}' is no paper run nor an artifact of one (papers: "
                                  "dgir; give PAPER, PAPER:ARTIFACT, PAPER:ARTIFACT:ROW+ROW or ARTIFACT)")


def test_sliced_3d_dataset_feeds_2d_tasks(tmp_path):
    img = tmp_path / "v.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.float32), np.eye(4)), str(img))
    from diffreg.commands.plan import add_arguments, datasets_of
    import argparse
    ap = argparse.ArgumentParser()
    add_arguments(ap)
    args = ap.parse_args(["--dataset", "acdc", str(img), "ed,es", "--dataset", "adni", str(img), "t1",
                          "--sliced", "acdc", "--out", str(tmp_path / "p")])
    ndims, _, _ = datasets_of(args)
    assert ndims == {"acdc": {2, 3}, "adni": {3}}


def test_a_papers_row_of_a_missing_optional_tool_is_skipped_with_its_reason(tmp_path, monkeypatch):
    from diffreg.baselines.fireants import FireANTs
    doc = tiny()
    doc["artifacts"]["tab"]["runs"].append({"name": "fireants", "baseline": "fireants", "preset": "test"})
    exp = load_experiment(write(tmp_path, doc))
    monkeypatch.setattr(FireANTs, "available", lambda self: "FireANTs is not installed here")
    u = {u.row: u for u in Planner([exp], TOY, profile="test").build().uses if u.artifact == "tab"}
    assert (u["fireants"].status, u["fireants"].note) == ("skipped", "FireANTs is not installed here")
    assert u["syn"].status == "run"
    monkeypatch.setattr(FireANTs, "available", lambda self: None)
    u = {u.row: u for u in Planner([exp], TOY, profile="test").build().uses if u.artifact == "tab"}
    assert u["fireants"].status == "run"


def test_a_papers_alias_reaches_the_plan_under_the_canonical_name(tmp_path):
    """DiffuseMorph's lambda_phi (its Eq. 9 symbol) is lambda_reg: a row giving it overrides the loss
    preset's lambda_reg, the plan's config carries lambda_reg only, and the same weight under either
    name is one training."""
    doc = tiny()
    doc["method"] = "diffusemorph"
    doc["artifacts"]["tab"]["runs"] = [{"name": "a", "loss": "l", "lambda_phi": 3.0}, {"name": "b", "lambda_reg": 3.0},
                                       {"name": "c", "loss": "l"}]
    doc["artifacts"]["tab"]["rows"] = {}
    plan = Planner([load_experiment(write(tmp_path, doc))], TOY, profile="test").build()
    uses = {u.row: u for u in plan.uses if u.artifact == "tab"}
    configs = {r: plan.trainings[run_of(uses[r].label)]["_config"] for r in "abc"}
    assert configs["a"]["lambda_reg"] == 3.0 and "lambda_phi" not in configs["a"]
    assert configs["c"]["lambda_reg"] == 0.5
    assert run_of(uses["a"].label) == run_of(uses["b"].label)

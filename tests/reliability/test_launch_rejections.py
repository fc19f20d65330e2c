"""`diffreg launch`, the head-node check main.nf runs before any task: each bad parameter stops it
with one exact line and writes no launch.json; a good launch lists its datasets and papers.
In-process (seconds); tests/reliability/test_pipeline_rejections.py runs a few through Nextflow."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from diffreg.cli import main
from diffreg.launch.datasets import TOY_MODALITIES

from .test_cli_rejections import _run, sheet

ROOT = Path(__file__).resolve().parents[2]

# the parameters of `-profile test` as Nextflow hands them over (nextflow.config + conf/test.config)
BASE = {"input": None, "dataset": None, "datasets": None, "plugins": None, "outdir": "results", "label_names": None,
        "allow_missing_labels": False,
        "help": False, "toy_subjects": 16, "toy_size": 64, "toy_ndim": 2, "standins": "auto", "standin_subjects": 4,
        "standin_size": 32, "seed": 42, "reference": None, "reference_modality": "nbe", "affine": "Affine",
        "crop_shape": None, "preprocess_args": None, "dataset_args": None, "pair_scheme": "all_ordered",
        "pair_split": "test", "max_pairs": 4, "moving_modality": "be", "fixed_modality": "be",
        "methods": "voxelmorph", "backbone": None, "similarity": None, "regulariser": None, "lambda_reg": None,
        "train_iterations": 600, "batch_size": None, "learning_rate": 1e-3, "device": "auto", "checkpoint_dir": None,
        "checkpoint_every": 100, "seeds": 1, "baselines": "syn,niftyreg", "syn_preset": "test",
        "niftyreg_preset": "test", "papers": "dgir", "experiment_profile": "test", "artifacts": "all",
        "experiment_slice": "2:mid", "max_cpus": 2, "max_memory": "6.GB", "max_time": "1.h", "slurm_queue": None,
        "slurm_account": None, "slurm_options": None, "gpu_options": "--gres=gpu:1", "config_profile_name": "test"}


def _own_sheet(w: Path) -> dict:
    """A user samplesheet (modalities a, b; 1 train, 2 test subjects) as --input."""
    return {"input": str(sheet(w)), "moving_modality": "a", "fixed_modality": "a", "reference_modality": "a",
            "papers": "none"}


def _stray_label(w: Path) -> Path:
    import nibabel as nib
    import numpy as np
    path = sheet(w)
    lab = np.asarray(nib.load(w / "s1_lab.nii.gz").dataobj).copy()
    lab[0, 0, 0] = 7
    nib.save(nib.Nifti1Image(lab, np.eye(4)), str(w / "s1_lab.nii.gz"))
    return path


def _typo_yaml(w: Path) -> dict:
    text = (ROOT / "experiments/dgir.yaml").read_text().replace("\nartifacts:", "\nartefacts_extra: 1\nartifacts:", 1)
    (w / "mine.yaml").write_text(text)
    return {"papers": str(w / "mine.yaml")}


# (id, changes: dict or fn(work dir) -> dict, exact message after "diffreg: error: "; {w}: the work dir)
CASES = [
    ("unknown-parameter", {"learning_rat": 0.1}, "Unknown parameter(s): --learning_rat (see: nextflow run main.nf --help)"),
    ("type", {"toy_size": "big"}, "Parameter --toy_size: expected integer, got 'big'"),
    ("learning-rate", {"learning_rate": 100}, "Parameter --learning_rate: must be a number in (0, 1] "
                                              "(Adam moves every weight by about lr per step), got 100"),
    ("affine", {"affine": "Afine"}, "Parameter --affine: must be Affine, Rigid, Similarity, TRSAA or none, got 'Afine'"),
    ("crop-shape", {"crop_shape": "48,x"},
     "Parameter --crop_shape: expected 2 or 3 positive integers separated by commas (e.g. 48,48,48), got '48,x'"),
    ("pair-scheme", {"pair_scheme": "pairs"},
     "Parameter --pair_scheme: must be all_ordered, consecutive, atlas, intra or random, got 'pairs'"),
    ("experiment-slice", {"experiment_slice": "5:mid"},
     "Parameter --experiment_slice: expected AXIS[:mid|label|INDEX] with AXIS 0, 1 or 2 (e.g. 2:mid), got '5:mid'"),
    ("toy-modality", {"moving_modality": "flair"},
     "Parameter --moving_modality: 'flair' is no modality of the embedded toy data (modalities: nbe, be, t2)"),
    ("unknown-method", {"methods": "voxelmorph,foo"}, "Parameter --methods: unknown method(s) foo (known: "),
    ("unknown-baseline", {"baselines": "syn,foo"},
     "Parameter --baselines: unknown baseline(s) foo (known: fireants, lddmm, niftyreg, syn)"),
    ("train-iterations", {"train_iterations": 0}, "Parameter --train_iterations: must be an integer >= 1, got 0"),
    ("unknown-paper", {"papers": "nope"}, "Parameter --papers: no experiments/nope.yaml (known: "),
    ("yaml-typo-by-path", _typo_yaml, "Parameter --papers: {w}/mine.yaml: artefacts_extra: unknown key ("),
    ("unknown-artifact", {"artifacts": "dgir:table9"},
     "Parameter --artifacts: 'dgir:table9' is no paper run nor an artifact of one (papers: dgir; give PAPER, "
     "PAPER:ARTIFACT, PAPER:ARTIFACT:ROW+ROW or ARTIFACT)"),
    ("unknown-row", {"artifacts": "dgir:table1:nope"},
     "Parameter --artifacts: 'dgir:table1:nope': nope not a row of dgir:table1 (rows: lncc, mse, mind, ngf, deepsim, "
     "ae_lncc, vgg_lncc, dino_lncc, diffusion_lncc, seg_guided_mmreg)"),
    ("dataset-args-flag", {"dataset_args": "toy=--spacingg 1 1"},
     "Parameter --dataset_args: toy: unknown flag(s) --spacingg 1 1 of diffreg preprocess (see: diffreg preprocess --help)"),
    ("dataset-args-value", {"dataset_args": "toy=--shape a b"},
     "Parameter --dataset_args: toy: argument --shape: invalid int value: 'a' (see: diffreg preprocess --help)"),
    ("dataset-args-name", {"dataset_args": "acdcc=--shape 8 8"}, "Parameter --dataset_args: no dataset acdcc (given: "),
    ("preprocess-args", {"preprocess_args": "--intensity zscoree"},
     "Parameter --preprocess_args: argument --intensity: invalid choice: 'zscoree' (choose from 'minmax', "
     "'percentile', 'none') (see: diffreg preprocess --help)"),
    ("pair-split-empty", lambda w: {**_own_sheet(w), "pair_split": "val"},
     "Parameter --pair_split: no subject of {w}/samplesheet.csv has split val (splits: test, train)"),
    ("no-training-subject", lambda w: {**_own_sheet(w), "input": str(sheet(w, rows=[{"split": "test"}]))},
     "Parameter --methods: no subject of {w}/samplesheet.csv has split train: the learned methods need training "
     "subjects (or give --methods none)"),
    ("sheet-modality", lambda w: {**_own_sheet(w), "moving_modality": "flair"},
     "Parameter --moving_modality: 'flair' is no modality of {w}/samplesheet.csv (image_<modality> columns: a, b)"),
    # a stray label 7 in one subject of a sheet whose labels are 1-2 and no labels.json: refused
    ("label-in-one-subject", lambda w: {**_own_sheet(w), "input": str(_stray_label(w))},
     "Samplesheet {w}/samplesheet.csv: label 7 is in 1 of the 3 labelled subjects (s1); labels "
     "found: 1, 2, 7. Declare the labels in a labels.json (value -> name) beside the samplesheet or with "
     "--label_names, or allow it with --allow_missing_labels (diffreg validate: --allow-missing-labels)"),
    ("label-names-json", lambda w: ((w / "names.json").write_text('{"0": "bg",}'),
                                    {"label_names": str(w / "names.json")})[1],
     "Parameter --label_names: {w}/names.json: invalid JSON (Expecting property name enclosed in double quotes: "
     "line 1 column 12 (char 11))"),
]


def _launch(w: Path, params: dict, capsys):
    (w / "params.json").write_text(json.dumps(params))
    return _run(["launch", "--params", str(w / "params.json"), "--out", str(w / "launch.json")], capsys)


@pytest.mark.parametrize("name,changes,message", CASES, ids=[c[0] for c in CASES])
def test_launch_refuses_with_one_line(name, changes, message, tmp_path, capsys):
    params = {**BASE, **(changes(tmp_path) if callable(changes) else changes)}
    rc, line, _ = _launch(tmp_path, params, capsys)
    expected = "diffreg: error: " + message.format(w=tmp_path)
    assert rc == 2
    assert line.startswith(expected) if expected.endswith(("(", "(known: ", "(given: ")) else line == expected, line
    assert not (tmp_path / "launch.json").exists()


def test_launch_of_the_test_profile(tmp_path, capsys):
    assert main(["launch", "--params", _write(tmp_path, {**BASE, "papers": "all"}), "--out", str(tmp_path / "l.json")]) == 0
    launch = json.loads((tmp_path / "l.json").read_text())
    names = [d["name"] for d in launch["datasets"]]
    # the main path's brain population first, then the stand-in of each dataset the papers name
    assert names[0] == "toy" and {"acdc", "camus", "echonet", "faces", "oasis", "adni"} <= set(names)
    assert all(d["standin"] for d in launch["datasets"][1:]) and launch["datasets"][0]["ndim"] == 2
    assert [Path(p).stem for p in launch["papers"]] == ["dgir", "diffusemorph", "diffusereg", "ldm_morph", "m2m_reg"]
    assert "--main-methods voxelmorph" in launch["plan_args"] and "--main-baselines syn=test,niftyreg=test" in launch["plan_args"]
    assert "acdc" in launch["sliced"] and launch["weights"] == {}
    assert "[launch] datasets: toy (2D, embedded)" in capsys.readouterr().out


def test_launch_says_when_the_reference_modality_is_missing(tmp_path, capsys):
    params = {**BASE, **_own_sheet(tmp_path), "reference_modality": "nbe"}
    assert main(["launch", "--params", _write(tmp_path, params), "--out", str(tmp_path / "l.json")]) == 0
    assert "note: --reference_modality nbe: no image_nbe column" in capsys.readouterr().out
    launch = json.loads((tmp_path / "l.json").read_text())
    assert launch["datasets"][0] | {"sheet": None} == {"name": "input", "sheet": None, "ndim": 3, "standin": False,
                                                       "modalities": ["a", "b"], "splits": ["test", "train"]}


def test_toy_modalities_match_the_toy_data(tmp_path):
    """The modalities launch checks for the embedded data are what `diffreg toy-data` writes."""
    assert main(["toy-data", "--outdir", str(tmp_path), "--n-subjects", "3", "--size", "16", "--ndim", "2"]) == 0
    written = {p.name[len("sub-001_"):-len(".nii.gz")] for p in tmp_path.glob("sub-001_*.nii.gz")} - {"labels"}
    assert set(TOY_MODALITIES) == written


def _write(w: Path, params: dict) -> str:
    (w / "params.json").write_text(json.dumps(params))
    return str(w / "params.json")


def test_no_brain_population_when_no_task_uses_it(tmp_path):
    """DiffuseMorph's tasks all have stand-ins: without the main path, no `toy` is made; an artifact
    selected on a task that falls back to `toy` (DGIR's Table 2) brings it back."""
    params = {**BASE, "papers": "diffusemorph", "methods": "none", "baselines": "none"}
    assert main(["launch", "--params", _write(tmp_path, params), "--out", str(tmp_path / "l.json")]) == 0
    names = [d["name"] for d in json.loads((tmp_path / "l.json").read_text())["datasets"]]
    assert "toy" not in names and {"faces", "acdc", "oasis"} <= set(names)
    params = {**params, "papers": "dgir", "artifacts": "dgir:table2_be_nbe"}
    assert main(["launch", "--params", _write(tmp_path, params), "--out", str(tmp_path / "l.json")]) == 0
    assert [d["name"] for d in json.loads((tmp_path / "l.json").read_text())["datasets"]][0] == "toy"


def test_a_label_some_subjects_lack_is_allowed_when_asked(tmp_path):
    params = {**BASE, **_own_sheet(tmp_path), "input": str(_stray_label(tmp_path)), "allow_missing_labels": True}
    assert main(["launch", "--params", _write(tmp_path, params), "--out", str(tmp_path / "l.json")]) == 0

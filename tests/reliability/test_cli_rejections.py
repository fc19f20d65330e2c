"""Every bad input a user can give the `diffreg` commands: each stops with one exact line on
stderr, a non-zero exit code (2: bad input, 65: diverged training or a non-finite field), and leaves
no file behind (no output folder, no temporary file). Commands run in-process: seconds in all."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from diffreg.cli import main
from diffreg.methods import METHODS

from .conftest import snapshot

SHAPE3 = (6, 5, 4)


def _img(path: Path, arr) -> str:
    nib.save(nib.Nifti1Image(np.asarray(arr), np.eye(4)), str(path))
    return path.name


def _rand(shape, seed=0):
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def _labels(shape=SHAPE3):
    lab = np.zeros(shape, dtype=np.uint8)
    lab[1:3] = 1
    lab[3:] = 2
    return lab


def sheet(w: Path, rows=None, header="subject,split,labels,image_a,image_b,prealigned", n=3, raw=None) -> Path:
    """A valid samplesheet of n 3D subjects in `w`, with rows updated by `rows` ({col: cell})."""
    lines = [header]
    splits = ["train"] * (n - 2) + ["test", "test"]
    for i in range(n):
        sid = f"s{i}"
        row = {"subject": sid, "split": splits[i], "labels": _img(w / f"{sid}_lab.nii.gz", _labels()),
               "image_a": _img(w / f"{sid}_a.nii.gz", _rand(SHAPE3, i)),
               "image_b": _img(w / f"{sid}_b.nii.gz", _rand(SHAPE3, 10 + i)), "prealigned": "false"}
        if rows and i < len(rows) and rows[i]:
            row.update(rows[i])
        lines.append(",".join(str(row.get(c.strip(), "")) for c in header.split(",")))
    p = w / "samplesheet.csv"
    p.write_text(raw if raw is not None else "\n".join(lines) + "\n")
    return p


def validate(*extra):
    return lambda w, d, m: ["validate", "--input", str(w / "samplesheet.csv"), "--out", str(w / "out" / "checked.csv"), *extra]


S = "{w}/samplesheet.csv"


def setup_files(w: Path, files: dict[str, np.ndarray]):
    for name, arr in files.items():
        _img(w / name, arr)


# (id, setup(w), argv(w, d, m), exit code, exact stderr line with {w} work dir, {d} toy data, {m} model)
SHEET_CASES = [
    ("missing-column", lambda w: sheet(w, header="subject,labels,image_a"), validate(), 2,
     f"{S}: missing column(s) split; found subject, labels, image_a"),
    ("no-rows", lambda w: sheet(w, raw="subject,split,labels,image_a\n"), validate(), 2, f"{S}: no rows"),
    ("empty-file", lambda w: sheet(w, raw=""), validate(), 2,
     f"{S}: not a readable CSV (No columns to parse from file)"),
    ("sheet-not-found", lambda w: None, validate(), 2, f"{S}: samplesheet not found"),
    ("image-not-found", lambda w: sheet(w, [None, {"image_a": "gone.nii.gz"}]), validate(), 2,
     f"{S} line 3 (s1): image_a: file not found: {{w}}/gone.nii.gz"),
    ("garbage-nifti", lambda w: (sheet(w, [{"image_b": "junk.nii.gz"}]), (w / "junk.nii.gz").write_bytes(b"not an image")),
     validate(), 2, f"{S} line 2 (s0): image_b: unreadable image {{w}}/junk.nii.gz ("),
    ("truncated-nifti", lambda w: (sheet(w), (w / "s2_a.nii.gz").write_bytes((w / "s2_a.nii.gz").read_bytes()[:60])),
     validate(), 2, f"{S} line 4 (s2): image_a: unreadable image {{w}}/s2_a.nii.gz ("),
    ("duplicate-id", lambda w: sheet(w, [None, {"subject": "s0"}]), validate(), 2,
     f"{S} line 3 (s0): duplicate subject id (first on line 2)"),
    ("empty-id", lambda w: sheet(w, [None, {"subject": ""}]), validate(), 2, f"{S} line 3: empty subject id"),
    ("non-ascii-id", lambda w: sheet(w, [None, {"subject": "süb"}]), validate(), 2,
     f"{S} line 3 (süb): subject id 'süb' has characters other than letters, digits, _ - ."),
    ("bad-split", lambda w: sheet(w, [{"split": "training"}]), validate(), 2,
     f"{S} line 2 (s0): split 'training' is not one of train, val, test"),
    ("bad-prealigned", lambda w: sheet(w, [{"prealigned": "maybe"}]), validate(), 2,
     f"{S} line 2 (s0): prealigned 'maybe' is not true or false"),
    ("space-in-cell", lambda w: sheet(w, [None, {"image_b": " s1_b.nii.gz"}]), validate(), 2,
     f"{S} line 3 (s1): image_b: space around 's1_b.nii.gz'; remove the spaces"),
    ("space-in-header", lambda w: sheet(w, header="subject, split,labels,image_a,image_b,prealigned"), validate(), 2,
     f"{S}: space around column name(s) ' split'; remove the spaces"),
    ("no-image", lambda w: sheet(w, [{"image_a": "", "image_b": ""}]), validate(), 2,
     f"{S} line 2 (s0): no image (every image_<modality> cell is empty)"),
    ("test-without-labels", lambda w: sheet(w, [None, {"labels": ""}], n=3), validate(), 2,
     f"{S} line 3 (s1): labels: empty cell (test subjects need label maps)"),
    ("labels-column-without-image", lambda w: sheet(w, header="subject,split,labels,image_a,labels_x"), validate(), 2,
     f"{S}: column(s) labels_x name no image_<modality> column"),
    ("nan-voxel", lambda w: (sheet(w), _img(w / "s1_a.nii.gz", np.where(_labels() > 1, np.nan, 0.5).astype(np.float32))),
     validate(), 2, f"{S} line 3 (s1): image_a: {{w}}/s1_a.nii.gz: 60 NaN or Inf voxel(s)"),
    ("inf-voxel", lambda w: (sheet(w), _img(w / "s1_b.nii.gz", np.where(_labels() > 1, np.inf, 0.5).astype(np.float32))),
     validate(), 2, f"{S} line 3 (s1): image_b: {{w}}/s1_b.nii.gz: 60 NaN or Inf voxel(s)"),
    ("constant-zero-image", lambda w: (sheet(w), _img(w / "s0_a.nii.gz", np.zeros(SHAPE3, np.float32))),
     validate(), 2, f"{S} line 2 (s0): image_a: {{w}}/s0_a.nii.gz: constant image (every voxel is 0): nothing to register"),
    ("constant-one-value-image", lambda w: (sheet(w), _img(w / "s2_b.nii.gz", np.full(SHAPE3, 7, np.int16))),
     validate(), 2, f"{S} line 4 (s2): image_b: {{w}}/s2_b.nii.gz: constant image (every voxel is 7): nothing to register"),
    ("2d-among-3d", lambda w: (sheet(w), _img(w / "s2_a.nii.gz", _rand((6, 5))), _img(w / "s2_b.nii.gz", _rand((6, 5), 1)),
                               _img(w / "s2_lab.nii.gz", _labels((6, 5)))),
     validate(), 2, f"{S} line 4 (s2): 2D/3D mismatch across subjects: line 4 (s2) is 2D, line 2 (s0) is 3D"),
    ("2d-3d-within-subject", lambda w: (sheet(w), _img(w / "s1_b.nii.gz", _rand((6, 5)))), validate(), 2,
     f"{S} line 3 (s1): 2D/3D mismatch: image_a is 3D, image_b is 2D"),
    ("shape-mismatch", lambda w: (sheet(w), _img(w / "s1_b.nii.gz", _rand((7, 5, 4)))), validate(), 2,
     f"{S} line 3 (s1): shape mismatch: image_a (6, 5, 4) vs image_b (7, 5, 4)"),
    # labels written at 2 mm on a 1 mm image (same array shape): every Dice would be wrong
    ("label-geometry", lambda w: (sheet(w), nib.save(nib.Nifti1Image(_labels(), np.diag([2.0, 2.0, 2.0, 1.0])),
                                                     str(w / "s1_lab.nii.gz"))), validate(), 2,
     f"{S} line 3 (s1): labels: its voxel-to-world affine differs from image_a's by up to 1 mm: a label map "
     "must lie on its image's grid"),
    ("4d-image", lambda w: (sheet(w), _img(w / "s1_b.nii.gz", _rand((6, 5, 4, 2)))), validate(), 2,
     f"{S} line 3 (s1): image_b: {{w}}/s1_b.nii.gz: expected a 2D or 3D image, got shape (6, 5, 4, 2)"),
    ("non-integer-labels", lambda w: (sheet(w), _img(w / "s0_lab.nii.gz", _labels().astype(np.float32) + 0.5)),
     validate(), 2, f"{S} line 2 (s0): labels: {{w}}/s0_lab.nii.gz: label map has non-integer values"),
    ("negative-labels", lambda w: (sheet(w), _img(w / "s0_lab.nii.gz", _labels().astype(np.int16) - 1)),
     validate(), 2, f"{S} line 2 (s0): labels: {{w}}/s0_lab.nii.gz: label values [-1] outside the declared set (>= 0)"),
    ("empty-label-map", lambda w: (sheet(w), _img(w / "s2_lab.nii.gz", np.zeros(SHAPE3, np.uint8))), validate(), 2,
     f"{S} line 4 (s2): labels: {{w}}/s2_lab.nii.gz: label map is empty (background only)"),
    ("undeclared-label-values", lambda w: sheet(w), validate("--label-values", "0,1"), 2,
     f"{S} line 2 (s0): labels: {{w}}/s0_lab.nii.gz: label values [2] outside the declared set (0,1) [and 2 more problem(s)]"),
    ("undeclared-labels-json-beside", lambda w: (sheet(w), (w / "labels.json").write_text('{"0": "bg", "2": "x"}')),
     validate(), 2,
     f"{S} line 2 (s0): labels: {{w}}/s0_lab.nii.gz: label values [1] outside the declared set (0,2) [and 2 more problem(s)]"),
    ("undeclared-label-names-elsewhere", lambda w: (sheet(w), (w / "n").mkdir(), (w / "n" / "names.json").write_text('{"0": "bg", "1": "a"}')),
     lambda w, d, m: validate("--label-names", str(w / "n" / "names.json"))(w, d, m), 2,
     f"{S} line 2 (s0): labels: {{w}}/s0_lab.nii.gz: label values [2] outside the declared set (0,1) [and 2 more problem(s)]"),
    ("label-names-invalid-json", lambda w: (sheet(w), (w / "names.json").write_text('{"0": "bg",}')),
     lambda w, d, m: validate("--label-names", str(w / "names.json"))(w, d, m), 2,
     "{w}/names.json: invalid JSON (Expecting property name enclosed in double quotes: line 1 column 12 (char 11))"),
    ("label-names-not-integers", lambda w: (sheet(w), (w / "names.json").write_text('{"bg": 0}')),
     lambda w, d, m: validate("--label-names", str(w / "names.json"))(w, d, m), 2,
     "{w}/names.json: keys must be integer label values, got bg"),
    ("label-values-garbage", lambda w: sheet(w), validate("--label-values", "a,b"), 2,
     "--label-values a,b: not a list of integers (e.g. 0,1,2,3 or 0-35)"),
    ("labels-json-beside-garbage", lambda w: (sheet(w), (w / "labels.json").write_text('{"x": 1}')), validate(), 2,
     "{w}/labels.json: not a JSON object of label value -> name (invalid literal for int() with base 10: 'x')"),
]


def train(*extra, method="voxelmorph"):
    return lambda w, d, m: ["train", "--method", method, "--data-dir", str(d), "--subjects", "sub-001",
                            "--iterations", "2", "--device", "cpu", "--threads", "1", "--out", str(w / "out" / "model"), *extra]


def _cfg(text):
    return lambda w: (w / "cfg.json").write_text(text)


TRAIN_CASES = [
    ("unknown-method", None, train(method="voxelmorf"), 2, "unknown method 'voxelmorf' (known: " + ", ".join(sorted(METHODS.names())) + ")"),
    ("iterations-0", None, train("--iterations", "0"), 2,
     "setting iterations = 0 for method voxelmorph: must be an integer >= 1"),
    ("iterations-negative", None, train("--iterations", "-5"), 2,
     "setting iterations = -5 for method voxelmorph: must be an integer >= 1"),
    ("batch-size-0", None, train("--batch-size", "0"), 2,
     "setting batch_size = 0 for method voxelmorph: must be an integer >= 1"),
    ("lr-0", None, train("--lr", "0"), 2,
     "setting lr = 0.0 for method voxelmorph: must be a number in (0, 1] (Adam moves every weight by about lr per step)"),
    ("lr-100", None, train("--lr", "100"), 2,
     "setting lr = 100.0 for method voxelmorph: must be a number in (0, 1] (Adam moves every weight by about lr per step)"),
    ("lr-1e4", None, train("--lr", "1e4"), 2,
     "setting lr = 10000.0 for method voxelmorph: must be a number in (0, 1] (Adam moves every weight by about lr per step)"),
    ("lr-nan", None, train("--lr", "nan"), 2,
     "setting lr = nan for method voxelmorph: must be a number in (0, 1] (Adam moves every weight by about lr per step)"),
    ("lambda-nan", None, train("--lambda-reg", "nan"), 2,
     "setting lambda_reg = nan for method voxelmorph: must be a finite number >= 0"),
    ("lambda-inf", None, train("--lambda-reg", "inf"), 2,
     "setting lambda_reg = inf for method voxelmorph: must be a finite number >= 0"),
    ("lambda-negative", None, train("--lambda-reg", "-1"), 2,
     "setting lambda_reg = -1.0 for method voxelmorph: must be a finite number >= 0"),
    ("seed-negative", None, train("--seed", "-1"), 2, "--seed -1: must be an integer in [0, 2^32) (numpy's seed range)"),
    ("config-invalid-json", _cfg('{"lr": 1e-3,}'), lambda w, d, m: train("--config", str(w / "cfg.json"))(w, d, m), 2,
     "{w}/cfg.json: invalid JSON (Expecting property name enclosed in double quotes: line 1 column 13 (char 12))"),
    ("config-not-object", _cfg("[1, 2]"), lambda w, d, m: train("--config", str(w / "cfg.json"))(w, d, m), 2,
     "{w}/cfg.json: the --config file of method settings must be a JSON object, got list"),
    ("config-not-found", None, lambda w, d, m: train("--config", str(w / "cfg.json"))(w, d, m), 2,
     "{w}/cfg.json: file not found"),
    ("config-unknown-setting", _cfg('{"learning_rate": 0.001}'),
     lambda w, d, m: train("--config", str(w / "cfg.json"))(w, d, m), 2,
     "unknown setting(s) learning_rate for method voxelmorph (known: backbone, backbone_kwargs, batch_size, "
     "etas, inter_subject, iterations, lambda_reg, log_every, lr, pad_multiple, regulariser, regulariser_kwargs, "
     "seed, similarity, similarity_kwargs, trajectory, width)"),
    ("config-wrong-type", _cfg('{"batch_size": "many"}'), lambda w, d, m: train("--config", str(w / "cfg.json"))(w, d, m), 2,
     "setting batch_size = 'many' for method voxelmorph: expected an integer"),
    ("config-lr-out-of-range", _cfg('{"lr": 5}'), lambda w, d, m: train("--config", str(w / "cfg.json"))(w, d, m), 2,
     "setting lr = 5.0 for method voxelmorph: must be a number in (0, 1] (Adam moves every weight by about lr per step)"),
    ("no-subjects", None, lambda w, d, m: [*train()(w, d, m)[:6], ",", *train()(w, d, m)[7:]], 2,
     "--subjects: no training subject given"),
    ("unknown-subject", None, lambda w, d, m: [*train()(w, d, m)[:6], "sub-999", *train()(w, d, m)[7:]], 2,
     "{d}/sub-999_be.nii.gz: missing (subject sub-999, modality be)"),
    ("missing-modality", None, train("--moving-modality", "flair"), 2,
     "{d}/sub-001_flair.nii.gz: missing (subject sub-001, modality flair)"),
    ("atlas-not-a-training-subject", None, train("--atlas-subject", "sub-002"), 2,
     "--atlas-subject sub-002: not among the training subjects"),
    ("atlas-alone", None, train("--atlas-subject", "first"), 2,
     "atlas-based training needs at least 2 training subjects (the atlas and one more)"),
]


def register(moving="{d}/sub-002_be.nii.gz", fixed="{d}/sub-003_be.nii.gz", model="{m}", extra=()):
    def argv(w, d, m):
        f = lambda s: s.format(w=w, d=d, m=m)  # noqa: E731
        files = ["--moving", f(moving), "--fixed", f(fixed)] if moving else []
        return ["register", "--model", f(model), *files, *[f(x) for x in extra],
                "--device", "cpu", "--threads", "1", "--out", str(w / "out" / "reg")]
    return argv


def _write(name: str, text: str):
    return lambda w: (w / name).write_text(text)


def _copy_model(files: dict[str, str | bytes | None]):
    def setup(w):
        (w / "fake").mkdir()
        for name, content in files.items():
            if isinstance(content, bytes):
                (w / "fake" / name).write_bytes(content)
            elif content is not None:
                (w / "fake" / name).write_text(content)
    return setup


_CONFIG = json.dumps({"method": "voxelmorph", "ndim": 2, "config": {}})
REGISTER_CASES = [
    ("model-is-a-file", None, register(model="{d}/sub-001_be.nii.gz"), 2,
     "--model {d}/sub-001_be.nii.gz: not a folder (give the model folder written by `diffreg train`)"),
    ("model-folder-empty", _copy_model({}), register(model="{w}/fake"), 2,
     "{w}/fake: not a trained model folder (config.json missing)"),
    ("model-config-invalid", _copy_model({"config.json": "{"}), register(model="{w}/fake"), 2,
     "{w}/fake/config.json: invalid JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
    ("model-config-foreign", _copy_model({"config.json": '{"a": 1}'}), register(model="{w}/fake"), 2,
     "{w}/fake/config.json: not a model description of `diffreg train` (no method, ndim, config)"),
    ("model-pt-missing", _copy_model({"config.json": _CONFIG}), register(model="{w}/fake"), 2,
     "{w}/fake: not a trained model folder (model.pt missing)"),
    ("model-pt-garbage", _copy_model({"config.json": _CONFIG, "model.pt": b"garbage"}), register(model="{w}/fake"), 2,
     "{w}/fake/model.pt: not a PyTorch checkpoint (no zip archive: truncated or another file)"),
    ("model-pt-other-network", lambda w: (_copy_model({"config.json": _CONFIG})(w), __import__("torch").save({"x": __import__("torch").zeros(1)}, w / "fake" / "model.pt")),
     register(model="{w}/fake"), 2,
     "{w}/fake/model.pt: not the weights of this model (RuntimeError: Error(s) in loading state_dict for ModuleDict:)"),
    ("moving-not-found", None, register(moving="{w}/none.nii.gz"), 2, "{w}/none.nii.gz: file not found"),
    ("moving-fixed-shape", lambda w: _img(w / "big.nii.gz", _rand((20, 16))), register(moving="{w}/big.nii.gz"), 2,
     "{w}/big.nii.gz: shape (20, 16) differs from fixed (16, 16)"),
    ("moving-nan", lambda w: _img(w / "nan.nii.gz", np.full((16, 16), np.nan, np.float32)), register(moving="{w}/nan.nii.gz"), 2,
     "{w}/nan.nii.gz: contains NaN or Inf voxels"),
    ("3d-image-2d-model", lambda w: (_img(w / "m3.nii.gz", _rand((8, 8, 8))), _img(w / "f3.nii.gz", _rand((8, 8, 8), 1))),
     register(moving="{w}/m3.nii.gz", fixed="{w}/f3.nii.gz"), 2, "{w}/m3.nii.gz: 3D image, model {m} is 2D"),
    ("no-images", None, register(moving=None), 2, "give --moving and --fixed, or --pairs"),
    ("pairs-not-found", None, register(moving=None, extra=("--pairs", "{w}/none.csv")), 2, "--pairs {w}/none.csv: file not found"),
    ("pairs-no-fixed-column", _write("p.csv", "id,moving\np1,sub-002_be.nii.gz\n"),
     register(moving=None, extra=("--pairs", "{w}/p.csv", "--images-dir", "{d}")), 2,
     "{w}/p.csv: no column fixed (columns: id, moving, fixed, moving_labels, fixed_labels)"),
    ("pairs-file-missing", _write("p.csv", "id,moving,fixed\np1,sub-002_be.nii.gz,gone.nii.gz\n"),
     register(moving=None, extra=("--pairs", "{w}/p.csv", "--images-dir", "{d}")), 2,
     "{w}/p.csv:2: fixed gone.nii.gz not found under {d}"),
    ("settings-of-training", _write("s.json", '{"lr": 0.1}'), register(extra=("--settings", "{w}/s.json")), 2,
     "voxelmorph: lr not settable at registration (only none: the others change what is trained)"),
]

def pretrain(kind="adm_natural_images"):
    return lambda w, d, m: ["pretrain", "--stage", "adm-0001", "--kind", kind, "--config", str(w / "stage.json"),
                            "--device", "cpu", "--threads", "1", "--out", str(w / "out" / "adm.pt")]


def _stage(**settings):
    tiny = {"iterations": 2, "width": 8, "size": 32, "batch": 2, "images": ["astronaut"]}
    return lambda w: (w / "stage.json").write_text(json.dumps({**tiny, **settings}))


_LR = "must be a number in (0, 1] (Adam moves every weight by about lr per step)"
# settings of a pretraining stage: refused before any training (the divergence itself: test_pretrain_divergence.py)
PRETRAIN_CASES = [
    ("pretrain-unknown-kind", _stage(), pretrain("vae"), 2, "unknown stage kind 'vae' (known: adm_natural_images, diffusereg_vtn, ldm_morph_latent_diffusion, m2m_training_curves)"),
    ("pretrain-lr-100", _stage(lr=100), pretrain(), 2, f"adm_natural_images: lr 100 {_LR}"),
    ("pretrain-lr-0", _stage(lr=0), pretrain(), 2, f"adm_natural_images: lr 0 {_LR}"),
    ("pretrain-lr-nan", lambda w: (w / "stage.json").write_text('{"lr": NaN}'), pretrain(), 2, f"adm_natural_images: lr nan {_LR}"),
    ("pretrain-iterations-0", _stage(iterations=0), pretrain(), 2,
     "adm_natural_images: iterations 0 must be an integer >= 1"),
    ("pretrain-gray-prob-2", _stage(gray_prob=2), pretrain(), 2, "adm_natural_images: gray_prob 2 must be a number in [0, 1]"),
    ("pretrain-config-invalid-json", lambda w: (w / "stage.json").write_text('{"lr": 1e-3,}'), pretrain(), 2,
     "{w}/stage.json: invalid JSON (Expecting property name enclosed in double quotes: line 1 column 13 (char 12))"),
]

CASES = SHEET_CASES + TRAIN_CASES + REGISTER_CASES + PRETRAIN_CASES


def _run(argv, capsys) -> tuple[int, str, float]:
    t0 = time.perf_counter()
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse
        rc = exc.code
    elapsed = time.perf_counter() - t0
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    return rc, err[0], elapsed


@pytest.mark.parametrize("name,setup,argv,code,message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_one_line_nothing_written(name, setup, argv, code, message, toy, model, tmp_path, capsys):
    w = tmp_path / "w"
    w.mkdir()
    if setup:
        setup(w)
    before_w, before_d, before_m = snapshot(w), snapshot(toy), snapshot(model)
    rc, line, _ = _run(argv(w, toy, model), capsys)
    expected = "diffreg: error: " + message.format(w=w, d=toy, m=model)
    assert rc == code
    if expected.endswith("("):  # the library's own wording follows
        assert line.startswith(expected), line
    else:
        assert line == expected
    assert snapshot(w) == before_w and snapshot(toy) == before_d and snapshot(model) == before_m


def test_case_count():
    assert len(CASES) >= 40


def test_diverging_training_stops_before_backward_exit_65(toy, tmp_path, capsys, plugin_env):
    out = tmp_path / "model"
    rc, line, _ = _run(["train", "--method", "nanloss", "--data-dir", str(toy), "--subjects", "sub-001",
                        "--iterations", "5", "--device", "cpu", "--out", str(out)], capsys)
    assert rc == 65
    assert line == ("diffreg: error: training nanloss diverged at iteration 2: non-finite loss, similarity "
                    "(loss nan, similarity nan); lower --lr or check --lambda-reg; no model written")
    assert not out.exists()


def test_non_finite_field_not_written_exit_65(toy, tmp_path, capsys, plugin_env):
    model = tmp_path / "model"
    assert main(["train", "--method", "nanfield", "--data-dir", str(toy), "--subjects", "sub-001",
                 "--iterations", "1", "--device", "cpu", "--out", str(model)]) == 0
    capsys.readouterr()
    out = tmp_path / "reg"
    rc, line, _ = _run(["register", "--model", str(model), "--moving", str(toy / "sub-002_be.nii.gz"),
                        "--fixed", str(toy / "sub-003_be.nii.gz"), "--device", "cpu", "--out", str(out)], capsys)
    assert rc == 65
    assert line == (f"diffreg: error: {toy}/sub-002_be.nii.gz: model {model} gave a displacement with 512 NaN or "
                    "Inf value(s) (a diverged model?); nothing written")
    assert not out.exists()


def test_adm_checkpoint_not_a_checkpoint(tmp_path):
    from diffreg.errors import InputError
    from diffreg.nets.adm import load_adm

    junk = tmp_path / "weights.pt"
    junk.write_text("not a checkpoint")
    with pytest.raises(InputError, match=r"weights\.pt: not a PyTorch checkpoint of weights \("):
        load_adm(junk)
    with pytest.raises(InputError, match=r"none\.pt: checkpoint not found"):
        load_adm(tmp_path / "none.pt")

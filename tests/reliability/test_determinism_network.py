"""Same seed twice on CPU -> byte-identical model.pt, disp.nii.gz and metrics (the measured runtime
row aside), and a CLI run with every internet socket blocked works and tries no connection.

On a GPU, cuDNN convolutions and grid_sample's backward (atomic adds) are not deterministic, so
models and fields agree to rounding, not bytes; `torch.use_deterministic_algorithms` would make
them identical at a speed cost, which the pipeline does not pay."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from diffreg.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _pipeline_once(toy: Path, out: Path) -> None:
    common = ["--device", "cpu", "--threads", "1", "--seed", "3"]
    assert main(["train", "--method", "voxelmorph", "--data-dir", str(toy), "--subjects", "sub-001",
                 "--iterations", "3", *common, "--out", str(out / "model")]) == 0
    assert main(["register", "--model", str(out / "model"), "--moving", str(toy / "sub-002_be.nii.gz"),
                 "--fixed", str(toy / "sub-003_be.nii.gz"), "--moving-labels", str(toy / "sub-002_labels.nii.gz"),
                 "--fixed-labels", str(toy / "sub-003_labels.nii.gz"), "--pair", "p1", *common,
                 "--out", str(out / "reg" / "voxelmorph__p1")]) == 0
    assert main(["evaluate", "--registration", str(out / "reg"), "--images-dir", str(toy),
                 "--out", str(out / "metrics.csv")]) == 0


def test_same_seed_same_bytes(toy, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _pipeline_once(toy, a)
    _pipeline_once(toy, b)
    for rel in ("model/model.pt", "reg/voxelmorph__p1/disp.nii.gz", "reg/voxelmorph__p1/warped.nii.gz",
                "reg/voxelmorph__p1/warped_labels.nii.gz"):
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    # the one measured value of the metrics: wall time of the registration
    rows = [[r for r in (d / "metrics.csv").read_text().splitlines() if ",runtime_s," not in r] for d in (a, b)]
    assert rows[0] == rows[1] and len(rows[0]) > 10
    # the archive inside model.pt is named after the final file, not a temporary one
    import zipfile
    assert {n.split("/")[0] for n in zipfile.ZipFile(a / "model" / "model.pt").namelist()} == {"model"}


def test_pairs_of_a_set_equal_one_pair_runs(toy, tmp_path):
    """`register --pairs` (one pipeline task per registration set, the model loaded once) writes for
    each pair the bytes that a run on that pair alone writes."""
    common = ["--device", "cpu", "--threads", "1", "--seed", "3"]
    assert main(["train", "--method", "voxelmorph", "--data-dir", str(toy), "--subjects", "sub-001",
                 "--iterations", "3", *common, "--out", str(tmp_path / "model")]) == 0
    pairs = [("p1", "sub-002", "sub-003"), ("p2", "sub-003", "sub-002")]
    (tmp_path / "pairs.csv").write_text("id,moving,fixed,moving_labels,fixed_labels\n" + "".join(
        f"{i},{m}_be.nii.gz,{f}_be.nii.gz,{m}_labels.nii.gz,{f}_labels.nii.gz\n" for i, m, f in pairs))
    assert main(["register", "--model", str(tmp_path / "model"), "--name", "vm", "--pairs", str(tmp_path / "pairs.csv"),
                 "--images-dir", str(toy), *common, "--out", str(tmp_path / "set")]) == 0
    for i, m, f in pairs:
        alone = tmp_path / "alone" / f"vm__{i}"
        assert main(["register", "--model", str(tmp_path / "model"), "--name", "vm", "--pair", i,
                     "--moving", str(toy / f"{m}_be.nii.gz"), "--fixed", str(toy / f"{f}_be.nii.gz"),
                     "--moving-labels", str(toy / f"{m}_labels.nii.gz"), "--fixed-labels", str(toy / f"{f}_labels.nii.gz"),
                     *common, "--out", str(alone)]) == 0
        for name in ("disp.nii.gz", "warped.nii.gz", "warped_labels.nii.gz"):
            assert (tmp_path / "set" / f"vm__{i}" / name).read_bytes() == (alone / name).read_bytes(), (i, name)
        import json
        run = json.loads((tmp_path / "set" / f"vm__{i}" / "run.json").read_text())
        assert (run["pair"], run["moving"], run["fixed"]) == (i, f"{m}_be.nii.gz", f"{f}_be.nii.gz")


BLOCKER = textwrap.dedent("""
    import socket, sys
    attempts = []
    def refuse(*args, **kwargs):
        attempts.append(repr(args)[:200])
        raise OSError("network blocked by the test")
    real_connect = socket.socket.connect
    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            refuse(address)
        return real_connect(self, address)
    socket.socket.connect = connect
    socket.socket.connect_ex = lambda self, address: refuse(address)
    socket.create_connection = refuse
    socket.getaddrinfo = refuse
    from diffreg.cli import main
    out = sys.argv[1]
    rc = main(["toy-data", "--outdir", out + "/toy", "--n-subjects", "3", "--size", "16", "--ndim", "2"])
    rc = rc or main(["train", "--method", "voxelmorph", "--data-dir", out + "/toy", "--subjects", "sub-001",
                     "--iterations", "2", "--device", "cpu", "--threads", "1", "--out", out + "/model"])
    print("ATTEMPTS", len(attempts), attempts)
    sys.exit(rc)
""")


def test_no_network_connection(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "NO_PROXY": "*"}
    env.pop("DIFFREG_PLUGINS", None)
    res = subprocess.run([sys.executable, "-c", BLOCKER, str(tmp_path)], capture_output=True, text=True,
                         env=env, timeout=3600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "ATTEMPTS 0 []" in res.stdout, res.stdout[-2000:]
    assert (tmp_path / "model" / "model.pt").is_file()


def test_pretraining_stage_same_seed_same_weights(tmp_path):
    """A stage's network is built after `diffreg pretrain` seeds (DiffuseReg's VTN stage built its
    network from an unseeded generator): two runs give the same weights."""
    import json

    import torch
    import nibabel as nib
    import numpy as np
    (tmp_path / "acdc").mkdir()
    rng = np.random.default_rng(0)
    for frame in ("es", "ed"):      # one subject's two frames, 16^3 (the stage pads to multiples of 16)
        nib.save(nib.Nifti1Image(rng.random((16, 16, 16), dtype=np.float32), np.eye(4)),
                 str(tmp_path / "acdc" / f"p1_{frame}.nii.gz"))
    (tmp_path / "stage.json").write_text(json.dumps({"channels": 2, "iterations": 1, "moving": "es", "fixed": "ed"}))
    subject = "p1"
    for name in ("a", "b"):
        assert main(["pretrain", "--stage", "vtn", "--kind", "diffusereg_vtn", "--config", str(tmp_path / "stage.json"),
                     "--data-dir", str(tmp_path / "acdc"), "--subjects", subject, "--moving-modality", "es",
                     "--fixed-modality", "ed", "--device", "cpu", "--threads", "1", "--seed", "5",
                     "--out", str(tmp_path / f"{name}.pt")]) == 0

    def tensors(obj, prefix=""):
        if isinstance(obj, dict):
            for k, v in obj.items():
                yield from tensors(v, f"{prefix}/{k}")
        elif torch.is_tensor(obj):
            yield prefix, obj

    a, b = (dict(tensors(torch.load(tmp_path / f"{n}.pt", weights_only=False))) for n in ("a", "b"))
    assert a.keys() == b.keys() and len(a) > 10
    assert all(torch.equal(a[k], b[k]) for k in a)

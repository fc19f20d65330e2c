"""`kill -9` of a training part-way, then the same command again (as a retried task runs it):
the training resumes from its last checkpoint and the model is byte-identical to an
uninterrupted run's."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from diffreg.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _train_cmd(data: Path, out: Path, ck: Path | None) -> list[str]:
    cmd = [sys.executable, "-m", "diffreg.cli", "train", "--method", "voxelmorph", "--data-dir", str(data),
           "--subjects", "sub-001,sub-002", "--iterations", "400", "--batch-size", "1", "--lr", "1e-3",
           "--device", "cpu", "--threads", "1", "--seed", "5", "--out", str(out)]
    return cmd + (["--checkpoint-dir", str(ck), "--checkpoint-every", "10"] if ck else [])


def test_killed_training_resumes_to_the_same_model(tmp_path):
    data = tmp_path / "toy"
    assert main(["toy-data", "--outdir", str(data), "--n-subjects", "3", "--size", "32", "--ndim", "2"]) == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    ref = subprocess.run(_train_cmd(data, tmp_path / "ref", None), env=env, capture_output=True, text=True)
    assert ref.returncode == 0, ref.stderr

    ck = tmp_path / "checkpoints"
    proc = subprocess.Popen(_train_cmd(data, tmp_path / "model", ck), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    killed_at = None
    for line in proc.stdout:
        m = re.search(r"checkpoint at iteration (\d+)", line)
        if m and int(m.group(1)) >= 50:
            proc.send_signal(signal.SIGKILL)
            killed_at = int(m.group(1))
            break
    proc.wait(timeout=3600)
    assert killed_at is not None and proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "model" / "model.pt").exists() and len(list(ck.glob("*.ckpt"))) == 1

    again = subprocess.run(_train_cmd(data, tmp_path / "model", ck), env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    resumed = int(re.search(r"resumed from iteration (\d+)", again.stdout).group(1))
    assert 50 <= resumed < 400
    assert (tmp_path / "model" / "model.pt").read_bytes() == (tmp_path / "ref" / "model.pt").read_bytes()
    assert not list(ck.glob("*.ckpt"))          # removed once the model is saved

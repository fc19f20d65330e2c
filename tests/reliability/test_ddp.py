"""Data-parallel training: 2 CPU processes (torch DDP, gloo) on halves of each batch end with the
weights of 1 process on the whole batch (to 1e-6)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from diffreg.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _train(data: Path, out: Path, nproc: int, batch: int = 2) -> subprocess.CompletedProcess:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc),
                "--master-port", "29533"] if nproc > 1 else [sys.executable]
    cmd = launcher + ["-m", "diffreg.cli", "train", "--method", "voxelmorph", "--data-dir", str(data),
                      "--subjects", "sub-001,sub-002,sub-003", "--iterations", "15", "--batch-size", str(batch),
                      "--lr", "1e-3", "--device", "cpu", "--threads", "1", "--seed", "9", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, env=env, capture_output=True, text=True)


def test_two_processes_match_one(tmp_path):
    data = tmp_path / "toy"
    assert main(["toy-data", "--outdir", str(data), "--n-subjects", "3", "--size", "16", "--ndim", "2"]) == 0
    one = _train(data, tmp_path / "one", 1)
    assert one.returncode == 0, one.stderr
    two = _train(data, tmp_path / "two", 2)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "process 1 of 2" in two.stdout and "process 2 of 2" in two.stdout
    a = torch.load(tmp_path / "one" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "two" / "model.pt", weights_only=True)
    assert a.keys() == b.keys()
    diff = max((a[k].double() - b[k].double()).abs().max().item() for k in a)
    assert diff <= 1e-6, diff
    # the comparison can fail: one process on half the batch (rank 0's slice) ends elsewhere
    half = _train(data, tmp_path / "half", 1, batch=1)
    assert half.returncode == 0, half.stderr
    c = torch.load(tmp_path / "half" / "model.pt", weights_only=True)
    assert max((a[k] - c[k]).abs().max().item() for k in a) > 1e-4

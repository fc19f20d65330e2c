"""Small helpers shared by the cluster and container tests: run Nextflow, read what it left."""
from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# the smallest run that still sends every label (process_single, process_low, process_gpu) through
# the executor: 4 toy subjects (2 train, 2 test) as 32x32 slices, one evaluation pair, 10 steps
SMALL_RUN = ["--papers", "none", "--toy_subjects", "4", "--max_pairs", "1", "--train_iterations", "10",
             "--toy_size", "32"]


def nextflow_bin() -> str:
    for cand in (os.environ.get("NEXTFLOW"), str(ROOT / ".venv/bin/nextflow"), shutil.which("nextflow")):
        if cand and Path(cand).exists():
            return cand
    pytest.skip("no nextflow launcher: run `make setup` first")


def nextflow(cwd: Path, *args: str, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**(env or os.environ), "NXF_ANSI_LOG": "false"}
    env.setdefault("USER", "root" if os.geteuid() == 0 else str(os.getuid()))   # ch-run and squeue want it
    return subprocess.run([nextflow_bin(), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def failure(cwd: Path, proc: subprocess.CompletedProcess) -> str:
    log = cwd / ".nextflow.log"
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    return f"rc {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-1500:]}\n{tail}"


def trace_rows(outdir: Path) -> list[dict]:
    """The run's trace (pipeline_info/trace_*.txt): one row per task."""
    files = sorted((outdir / "pipeline_info").glob("trace_*.txt"))
    assert files, f"no trace file under {outdir}/pipeline_info"
    with open(files[-1]) as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def process_labels() -> dict[str, str]:
    """Process name -> its resource label, read from modules/local/*/main.nf."""
    labels = {}
    for path in (ROOT / "modules/local").glob("*/main.nf"):
        text = path.read_text()
        name = re.search(r"^process\s+(\w+)", text, re.M)
        label = re.search(r"^\s*label\s+'(\w+)'", text, re.M)
        if name and label:
            labels[name.group(1)] = label.group(1)
    return labels

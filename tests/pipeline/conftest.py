"""Drive `nextflow run main.nf` like a user does (pytest instead of nf-test: nf-test needs the internet)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def nextflow_bin() -> str:
    for cand in (os.environ.get("NEXTFLOW"), str(ROOT / ".venv/bin/nextflow"), shutil.which("nextflow")):
        if cand and Path(cand).exists():
            return cand
    pytest.skip("no nextflow launcher: run `make setup` first")


def run_nextflow(cwd: Path, *args: str, timeout: int = 3600) -> subprocess.CompletedProcess:  # a safety net, not a speed check
    env = {**os.environ, "NXF_ANSI_LOG": "false"}
    cmd = [nextflow_bin(), "run", str(ROOT / "main.nf"), "-ansi-log", "false", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def test_run(tmp_path_factory):
    """One `-profile test` run shared by the pipeline tests (a few minutes on 2 cores)."""
    cwd = tmp_path_factory.mktemp("nf_test_profile")
    proc = run_nextflow(cwd, "-profile", "test", "--outdir", "results")
    if proc.returncode != 0:
        log = (cwd / ".nextflow.log").read_text()[-4000:] if (cwd / ".nextflow.log").exists() else ""
        pytest.fail(f"pipeline failed (rc {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}\n{log}")
    return cwd, proc

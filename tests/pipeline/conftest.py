"""Drive `nextflow run main.nf` like a user does (pytest instead of nf-test: nf-test needs the internet)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# one process per kind of work, for the main path and the papers alike
PROCESSES = ["TOY_DATA", "PREPROCESS", "MAKE_PAIRS", "PLAN", "PRETRAIN", "TRAIN", "REGISTER", "BASELINE",
             "EVALUATE", "FIGURE", "ARTIFACTS", "TABULATE", "REPORT"]


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
    """One `-profile test` run shared by the pipeline tests (a few minutes on 2 cores). Under
    pytest-xdist the first worker that needs it runs it and the others wait for it and read it: one
    run per `make test`, whichever workers its tests land on."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return _test_run(tmp_path_factory.mktemp("nf_test_profile"))
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent       # the session's folder, common to its workers
    record = shared / "nf_test_profile.json"
    with FileLock(str(shared / "nf_test_profile.lock")):
        if not record.exists():
            cwd, proc = _test_run(shared / "nf_test_profile")
            record.write_text(json.dumps({"cwd": str(cwd), "args": proc.args, "returncode": proc.returncode,
                                          "stdout": proc.stdout, "stderr": proc.stderr}))
    done = json.loads(record.read_text())
    return Path(done["cwd"]), subprocess.CompletedProcess(done["args"], done["returncode"], done["stdout"], done["stderr"])


def _test_run(cwd: Path):
    cwd.mkdir(parents=True, exist_ok=True)
    proc = run_nextflow(cwd, "-profile", "test", "--outdir", "results")
    if proc.returncode != 0:
        log = (cwd / ".nextflow.log").read_text()[-4000:] if (cwd / ".nextflow.log").exists() else ""
        pytest.fail(f"pipeline failed (rc {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}\n{log}")
    return cwd, proc

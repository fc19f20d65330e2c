"""A pipeline killed part-way (Nextflow and its tasks, as a scheduler or a user would) resumes:
finished tasks are cached, the run completes, and its metrics equal an uninterrupted run's.

The run is the main path alone on the toy data (two learned methods, so that two trainings are
under way when the kill comes, and SyN), not the whole test profile: what is checked is the
resumption, and a small run (six 32x32 subjects) checks it in a fraction of the time."""
from __future__ import annotations

import os
import re
import subprocess
import time

import pandas as pd

import pytest

from .conftest import ROOT, nextflow_bin, run_nextflow

# measured wall time, not a result
TIMED = {"runtime_s", "threads"}
RUN = ["-profile", "test", "--outdir", "results", "--papers", "none", "--methods", "voxelmorph,symnet",
       "--baselines", "syn", "--toy_subjects", "6", "--toy_size", "32", "--max_pairs", "2",
       "--train_iterations", "300"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same run, uninterrupted."""
    cwd = tmp_path_factory.mktemp("nf_uninterrupted")
    proc = run_nextflow(cwd, *RUN)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return cwd


def _metrics(cwd):
    df = pd.read_csv(cwd / "results/tables/metrics_all.csv")
    df = df[~df["metric"].isin(TIMED)]
    return df.sort_values(list(df.columns[:-1])).reset_index(drop=True)


def test_killed_run_resumes_to_the_same_metrics(tmp_path, reference):
    cmd = [nextflow_bin(), "run", str(ROOT / "main.nf"), "-ansi-log", "false", *RUN]
    env = {**os.environ, "NXF_ANSI_LOG": "false"}
    log = open(tmp_path / "first.log", "w")
    # a session of its own, so that one signal reaches Nextflow and every task it started
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 3600   # a safety net, not a speed check
    while time.time() < deadline and proc.poll() is None:
        if len(re.findall(r"Submitted process > \S*:TRAIN \(", (tmp_path / "first.log").read_text())) >= 2:
            time.sleep(2)      # both trainings under way (their processes started)
            break
        time.sleep(2)
    assert proc.poll() is None, "the run ended before it could be killed"
    # Nextflow starts each task in a process group of its own: the session holds them all
    for _ in range(30):
        subprocess.run(["pkill", "-KILL", "-s", str(proc.pid)], capture_output=True)
        if subprocess.run(["pgrep", "-s", str(proc.pid)], capture_output=True).returncode != 0:
            break
        time.sleep(1)
    proc.wait()
    log.close()
    assert subprocess.run(["pgrep", "-s", str(proc.pid)], capture_output=True).returncode != 0, "tasks left running"

    again = run_nextflow(tmp_path, *RUN, "-resume")
    assert again.returncode == 0, again.stdout[-3000:]
    assert re.search(r"Cached process > \S*PREPROCESS", again.stdout), "finished tasks were not cached"
    assert "Submitted process" in again.stdout   # the killed work ran again
    # pipeline_info: the killed launch's partial trace stays, told apart by having no row in runs.tsv
    traces = sorted(p.name for p in (tmp_path / "results/pipeline_info").glob("trace_*.txt"))
    runs = pd.read_csv(tmp_path / "results/pipeline_info/runs.tsv", sep="\t")
    assert len(traces) == 2 and runs["trace"].tolist() == [traces[-1]], (traces, runs)
    assert runs["resumed"].tolist() == [True] and runs["status"].tolist() == ["success"]
    ours, uninterrupted = _metrics(tmp_path), _metrics(reference)
    assert len(set(ours["method"])) == 3          # both learned methods and SyN
    pd.testing.assert_frame_equal(ours, uninterrupted, check_exact=False, rtol=1e-6, atol=1e-9)

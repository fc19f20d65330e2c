"""`-profile test,slurm` through a real single-node Slurm: every task is a Slurm job granted the cpus,
memory and time its label asks for, and `-profile slurm,gpu` asks for a GPU on the GPU tasks only.

Two records are checked for each task: the `#SBATCH` lines Nextflow wrote into its .command.run
(what was asked) and Slurm's job completion record (jobcomp/filetxt: what Slurm granted and ran).
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from .nf import ROOT, SMALL_RUN, failure, nextflow, process_labels, trace_rows

pytestmark = pytest.mark.pipeline

CPUS = min(2, len(os.sched_getaffinity(0)))   # the test node has nproc CPUs
# caps that keep the labels apart (test.config's 1 h would give every task the same time limit)
CAPS = ["--max_cpus", str(CPUS), "--max_memory", "8.GB", "--max_time", "8.h"]
FAST = ["-c", str(Path(__file__).with_name("nextflow-fast.config"))]


def expected(process: str, label: str) -> tuple[int, int, int]:
    """(cpus, memory MB, time minutes) of conf/base.config's labels under CAPS, with conf/test.config's
    overrides for TRAIN and REGISTER (one CPU and 4 GB each) and BASELINE (one CPU), at the first attempt."""
    cpus, mem_gb, hours = {"process_single": (1, 4, 2), "process_low": (2, 8, 4), "process_medium": (6, 24, 8),
                           "process_high": (12, 64, 16), "process_gpu": (8, 32, 24)}[label]
    if process in ("TRAIN", "REGISTER"):
        cpus, mem_gb = 1, 4
    if process == "BASELINE":
        cpus = 1
    return min(cpus, CPUS), min(mem_gb, 8) * 1024, min(hours, 8) * 60


def sbatch_lines(workdir: str) -> list[str]:
    text = (Path(workdir) / ".command.run").read_text()
    return re.findall(r"^#SBATCH (.+)$", text, re.M)


def asked(lines: list[str]) -> tuple[int, int, int]:
    """cpus, memory MB and time minutes from Nextflow's #SBATCH lines."""
    opts = dict(line.split(None, 1) for line in lines if " " in line and line.startswith("-"))
    h, m, s = (int(x) for x in opts["-t"].split(":"))
    # Nextflow leaves out `-c` for one CPU, Slurm's default
    return int(opts.get("-c", 1)), int(opts["--mem"].rstrip("M")), h * 60 + m + (s > 0)


def jobcomp(cluster) -> dict[str, dict[str, str]]:
    """Job id -> fields of Slurm's completion record."""
    path = cluster.state / "jobcomp.txt"
    records = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        records[fields["JobId"]] = fields
    return records


def granted(record: dict[str, str]) -> tuple[int, int, int]:
    tres = dict(kv.split("=", 1) for kv in record["Tres"].split(","))
    num, unit = re.fullmatch(r"([\d.]+)([MGT])", tres["mem"]).groups()
    mem = round(float(num) * {"M": 1, "G": 1024, "T": 1024 ** 2}[unit])
    return int(record["ProcCnt"]), mem, int(record["TimeLimit"])


def wait_for_records(cluster, ids: set[str], timeout: float = 30) -> dict[str, dict[str, str]]:
    # slurmctld appends a job's record when the job is purged from its active list, a moment after
    # Nextflow has seen the exit file
    end = time.monotonic() + timeout
    while True:
        records = jobcomp(cluster)
        if ids <= set(records) or time.monotonic() > end:
            return records
        time.sleep(1)


def run_on_slurm(cluster, cwd: Path, profile: str, *extra: str):
    start = time.monotonic()
    proc = nextflow(cwd, "run", str(ROOT / "main.nf"), "-profile", profile, *FAST, *CAPS, *extra,
                    "--outdir", "results", env=cluster.env)
    assert proc.returncode == 0, failure(cwd, proc)
    rows = trace_rows(cwd / "results")
    records = wait_for_records(cluster, {r["native_id"] for r in rows})
    print(f"-profile {profile} {' '.join(extra)}: {len(rows)} Slurm jobs in {time.monotonic() - start:.0f} s")
    return rows, records


def test_every_task_is_a_slurm_job_with_its_labels_resources(slurm, tmp_path):
    rows, records = run_on_slurm(slurm, tmp_path, "test,slurm", *SMALL_RUN)
    labels = process_labels()
    ran = {r["process"].split(":")[-1] for r in rows}
    assert {"TOY_DATA", "PREPROCESS", "MAKE_PAIRS", "PLAN", "TRAIN", "REGISTER", "BASELINE", "EVALUATE",
            "TABULATE", "REPORT"} <= ran
    assert {labels[p] for p in ran} == {"process_single", "process_low", "process_gpu"}
    for row in rows:
        process = row["process"].split(":")[-1]
        want = expected(process, labels[process])
        where = f"{row['name']} ({labels[process]})"
        assert row["status"] == "COMPLETED" and row["native_id"].isdigit(), where
        lines = sbatch_lines(row["workdir"])
        assert asked(lines) == want, f"{where}: #SBATCH {lines}"
        assert not any("gres" in line or "gpus" in line for line in lines), f"{where}: GPU without -profile gpu"
        record = records.get(row["native_id"])
        assert record, f"{where}: job {row['native_id']} not in Slurm's completion records"
        assert record["JobState"] == "COMPLETED" and record["WorkDir"] == row["workdir"], (where, record)
        assert granted(record) == want, f"{where}: Slurm granted {record['Tres']}, {record['TimeLimit']} min"
        assert "gres/gpu" not in record["Tres"], where
    # one Slurm job per task, none run outside Slurm, none lost
    ours = {j for j, r in records.items() if r["WorkDir"].startswith(str(tmp_path))}
    assert ours == {r["native_id"] for r in rows}


def test_gpu_profile_asks_slurm_for_a_gpu_on_gpu_tasks_only(slurm, tmp_path):
    """-stub-run: the tasks' stub blocks run as Slurm jobs (the node's GPU is a placeholder, see
    slurm_cluster.write_config); DGIR's test rows bring PRETRAIN, FIGURE and ARTIFACTS too (one paper:
    every process label, in a third of the jobs of all five)."""
    probe = str(Path(__file__).with_name("gpu-probe.config"))
    rows, records = run_on_slurm(slurm, tmp_path, "test,slurm,gpu", "-c", probe, "-stub-run", "--max_pairs", "1",
                                 "--papers", "dgir")
    labels = process_labels()
    gpu_tasks = [r for r in rows if labels[r["process"].split(":")[-1]] == "process_gpu"]
    assert {r["process"].split(":")[-1] for r in gpu_tasks} == {"PRETRAIN", "TRAIN", "REGISTER"}
    assert len(gpu_tasks) < len(rows)
    for row in rows:
        gpu = labels[row["process"].split(":")[-1]] == "process_gpu"
        lines = sbatch_lines(row["workdir"])
        gres = [line for line in lines if "gres" in line or "gpus" in line]
        assert gres == (["--gres=gpu:1"] if gpu else []), f"{row['name']}: {gres}"
        record = records[row["native_id"]]
        assert record["JobState"] == "COMPLETED", record
        job_gpus = (Path(row["workdir"]) / ".slurm-job-gpus").read_text().strip()
        assert job_gpus == ("0" if gpu else "none"), f"{row['name']}: SLURM_JOB_GPUS={job_gpus}"

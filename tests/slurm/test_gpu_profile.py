"""conf/gpu.config as Nextflow resolves it (no GPU and no Slurm needed): the container GPU flags
survive any profile order, Apptainer and Charliecloud keep CUDA_VISIBLE_DEVICES, and GPU tasks are
serialised on the local executor only (Nextflow 24.10 assigns no GPUs to local tasks)."""
from __future__ import annotations

import re

from .nf import ROOT, nextflow


def resolved(tmp_path, profile: str) -> str:
    proc = nextflow(tmp_path, "config", "-profile", profile, str(ROOT))
    assert proc.returncode == 0 and "WARN" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc.stdout


def scope(text: str, name: str) -> str:
    match = re.search(rf"^{name} {{\n(.*?)^}}", text, re.M | re.S)
    assert match, f"no {name} scope"
    return match.group(1)


def test_gpu_flags_for_containers_in_either_profile_order(tmp_path):
    text = resolved(tmp_path, "gpu,docker")   # docker is defined before gpu: gpu must still win
    assert "runOptions = '-u $(id -u):$(id -g) --gpus all'" in scope(text, "docker")
    assert "enabled = true" in scope(text, "docker")
    assert "runOptions = '--nv'" in scope(text, "apptainer")
    for engine in ("apptainer", "singularity", "charliecloud"):
        assert "envWhitelist = 'CUDA_VISIBLE_DEVICES'" in scope(text, engine), engine
    assert "device = 'cuda'" in scope(text, "params") and "DIFFREG_DEVICE = 'cuda'" in scope(text, "env")
    assert re.search(r"withLabel:process_gpu \{\s*accelerator = 1\s*maxForks = 1", scope(text, "process"))


def test_slurm_gpu_tasks_are_not_serialised(tmp_path):
    text = scope(resolved(tmp_path, "slurm,gpu"), "process")
    assert "executor = 'slurm'" in text and "maxForks" not in text
    assert "params.gpu_options" in text   # clusterOptions: --gres=gpu:1 on process_gpu (test_slurm.py runs it)

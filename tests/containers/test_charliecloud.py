"""The pipeline's container, built here (`make container`: debootstrap + containers/recipe.sh) and run
with Charliecloud: the profile finds the image of this clone's pins, the image holds exactly the
pinned stack, and a small pipeline run executes its tasks inside it.

Building the image takes minutes and about 7 GB (PyPI's torch brings CUDA), too much for every
`make test`: the image tests run where the image already exists, or build it when
DIFFREG_BUILD_IMAGE=1.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.slurm.nf import ROOT, SMALL_RUN, failure, nextflow

BUILD = ROOT / "containers/build-chimage.sh"


def image_path() -> Path:
    out = subprocess.run(["bash", str(BUILD), "--path"], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def ch_env() -> dict[str, str]:
    # ch-run refuses to start without $USER
    return {**os.environ, "USER": os.environ.get("USER") or ("root" if os.geteuid() == 0 else str(os.getuid()))}


@pytest.fixture(scope="module")
def image() -> Path:
    path = image_path()
    if not (path / ".complete").exists() and os.environ.get("DIFFREG_BUILD_IMAGE") != "1":
        pytest.skip(f"container image not built ({path}): `make container` builds it (debootstrap + the "
                    "pinned stack from PyPI: 2-3 min here, 7 GB), or DIFFREG_BUILD_IMAGE=1 builds it here")
    # on an existing image the script only adds mount points for this host's top folders (a clone
    # under a folder the image was built without, e.g. /check, needs one: the image is read-only)
    proc = subprocess.run(["bash", str(BUILD)], capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    if not shutil.which("ch-run"):
        pytest.skip("ch-run not installed (apt-get install charliecloud)")
    probe = subprocess.run(["ch-run", str(path), "--", "true"], env=ch_env(), capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"ch-run cannot start a container here: {probe.stderr.strip()[-300:]}")
    return path


def test_profile_runs_the_image_of_this_clones_pins(tmp_path):
    """conf/charliecloud.config computes the key in Groovy; it must name the folder the build script makes."""
    proc = nextflow(tmp_path, "config", "-profile", "test,charliecloud", str(ROOT))
    assert proc.returncode == 0, proc.stderr
    flat = {line.split(" = ", 1)[0].strip(): line.split(" = ", 1)[1].strip("'\" ")
            for line in proc.stdout.splitlines() if " = " in line}
    assert proc.stdout.count(str(image_path())) == 1, proc.stdout
    assert "enabled = true" in proc.stdout.split("charliecloud {", 1)[1].split("}", 1)[0]
    assert flat.get("container") == str(image_path())


def test_image_packages_equal_envs(image):
    proc = subprocess.run(["bash", str(ROOT / "containers/check-image.sh"), str(image)], env=ch_env(),
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_pipeline_tasks_run_inside_the_image(image, tmp_path):
    proc = nextflow(tmp_path, "run", str(ROOT / "main.nf"), "-profile", "test,charliecloud", *SMALL_RUN,
                    "--outdir", "results", env=ch_env())
    assert proc.returncode == 0, failure(tmp_path, proc)
    scripts = list((tmp_path / "work").glob("*/*/.command.run"))
    assert scripts and all("ch-run" in s.read_text() and str(image) in s.read_text() for s in scripts)
    # the tasks' Python is the image's (Debian's 3.11.2 in /opt/diffreg/venv), not this machine's
    inside = subprocess.run(["ch-run", str(image), "--", "/opt/diffreg/venv/bin/python", "-c",
                             "import platform; print(platform.python_version())"],
                            env=ch_env(), capture_output=True, text=True, check=True).stdout.strip()
    runs = [json.loads(p.read_text()) for p in (tmp_path / "work").glob("*/*/*/run.json")]
    baseline = [r for r in runs if r.get("command") == "baseline" and r.get("baseline") == "niftyreg"]
    assert runs and baseline
    assert {r["versions"]["python"] for r in runs if "versions" in r} == {inside}
    assert baseline[0]["niftyreg_bin"].startswith("/opt/diffreg/")

"""How `make test` spreads the tests over processes (pytest-xdist, `--dist loadgroup`).

Tests that share an expensive fixture stay in one worker, so it is built once: every test reading
the shared `-profile test` run, each Slurm or container folder (one cluster or image each), and each
pipeline module (a module-scoped reference run). Everything else, the unit tests above all, is
spread over the workers one test at a time."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ONE_WORKER_FOLDERS = ("slurm", "containers")


def group_of(item: pytest.Item) -> str | None:
    if "test_run" in getattr(item, "fixturenames", ()):
        return "test_profile_run"
    parts = Path(str(item.fspath)).resolve().relative_to(HERE).parts
    if parts[0] in ONE_WORKER_FOLDERS:
        return parts[0]
    if parts[0] == "pipeline":
        return "/".join(parts)
    return None


def pytest_configure(config):
    # one BLAS/OpenMP thread per worker: the workers share the cores between them (a pipeline task
    # sets its own thread count from its CPUs)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        os.environ.setdefault("MKL_NUM_THREADS", "1")


@pytest.hookimpl(tryfirst=True)   # before xdist reads the groups (its own hook of this name)
def pytest_collection_modifyitems(config, items):
    for item in items:
        group = group_of(item)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))

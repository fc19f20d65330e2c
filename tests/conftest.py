"""`make test` spreads the tests over processes with pytest-xdist, a test file per worker
(`--dist loadfile`): a module's fixtures are built once, the Slurm tests share one cluster. The one
fixture several files share, the `-profile test` run, is built by the first worker that needs it
while the others wait (tests/pipeline/conftest.py)."""
from __future__ import annotations

import os


def pytest_configure(config):
    # one BLAS/OpenMP thread per worker: the workers share the cores between them (a pipeline task
    # sets its own thread count from its CPUs)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        os.environ.setdefault("MKL_NUM_THREADS", "1")

"""`make test` spreads the tests over processes with pytest-xdist, a test file per worker
(`--dist loadfile`): a module's fixtures are built once, the Slurm tests share one cluster. The one
fixture several files share, the `-profile test` run, is built by the first worker that needs it
(tests/pipeline/conftest.py); the files are ordered so that it starts first and its other readers
come last."""
from __future__ import annotations

import os


def pytest_configure(config):
    # one BLAS/OpenMP thread per worker: the workers share the cores between them (a pipeline task
    # sets its own thread count from its CPUs)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        os.environ.setdefault("MKL_NUM_THREADS", "1")


SHARED_RUN = "test_run"     # the session fixture of tests/pipeline/conftest.py: one -profile test run


def pytest_collection_modifyitems(config, items):
    """The order the files go to the workers (`make test` keeps it with --no-loadscope-reorder): a
    file that needs the shared `-profile test` run goes first, so that its ~15 minutes start at
    once, beside every other file; the other files that read that run go last, so that no worker waits
    for it while other tests are still queued."""
    files: dict[str, list] = {}
    for item in items:
        files.setdefault(item.nodeid.split("::")[0], []).append(item)
    readers = [f for f, its in files.items() if any(SHARED_RUN in getattr(i, "fixturenames", ()) for i in its)]
    if not readers:
        return
    # the reader with the most tests builds it: xdist queues a second file behind a worker's first only
    # when at most two of its tests are left, and none should wait behind the ~15-minute run
    first = max(readers, key=lambda f: len(files[f]))
    order = [first] + [f for f in files if f not in readers] + [f for f in readers if f != first]
    items[:] = [item for f in order for item in files[f]]

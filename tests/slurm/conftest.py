"""A one-node Slurm cluster for the tests of this folder: started once, stopped at the end."""
from __future__ import annotations

import pytest

from .slurm_cluster import SlurmCluster, Unavailable


@pytest.fixture(scope="package")
def slurm(tmp_path_factory):
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
    except Unavailable as err:
        pytest.skip(f"no Slurm test cluster: {err}")
    yield cluster
    cluster.stop()

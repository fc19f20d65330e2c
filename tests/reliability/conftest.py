"""Shared fixtures of the reliability tests: a tiny 2D toy dataset, a model trained on it, and a
helper that runs one `diffreg` command in-process and checks that it left no file behind."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from diffreg.cli import main

HERE = Path(__file__).resolve().parent


def snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture(scope="session")
def toy(tmp_path_factory) -> Path:
    """3 subjects of 16x16 (1 train, 2 test), made by `diffreg toy-data`."""
    d = tmp_path_factory.mktemp("data") / "toy"
    assert main(["toy-data", "--outdir", str(d), "--n-subjects", "3", "--size", "16", "--ndim", "2"]) == 0
    return d


@pytest.fixture(scope="session")
def model(toy, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model") / "model"
    assert main(["train", "--method", "voxelmorph", "--data-dir", str(toy), "--subjects", "sub-001",
                 "--iterations", "2", "--device", "cpu", "--threads", "1", "--out", str(out)]) == 0
    return out


@pytest.fixture
def plugin_env(monkeypatch):
    """Register the test methods of plugin_methods.py (NaN loss, NaN field) through DIFFREG_PLUGINS."""
    from diffreg.methods import METHODS

    monkeypatch.setenv("DIFFREG_PLUGINS", str(HERE / "plugin_methods.py"))
    yield
    for name in ("nanloss", "nanfield"):  # later cases list the known methods
        METHODS._items.pop(name, None)

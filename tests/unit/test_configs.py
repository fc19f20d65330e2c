"""diffreg.configs declares each method's settings without torch: its catalog is the method
registry's, the classes are the ones the methods build with, and the launch check of every paper
runs without importing torch."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from diffreg import configs
from diffreg.errors import InputError
from diffreg.methods import METHODS, Method, TrainerConfig
from diffreg.methods import diffusemorph, fsdiffreg

ROOT = Path(__file__).resolve().parents[2]


def test_the_catalog_is_the_method_registry_with_the_same_classes():
    assert sorted(configs.CONFIGS) == METHODS.names()
    for name in METHODS.names():
        assert configs.config_class(name) is METHODS.get(name).Config, name


def test_network_names_checked_are_the_networks_built():
    assert set(configs.diffusemorph.NETWORK_NAMES) == set(diffusemorph.NETWORKS)
    assert set(configs.diffusemorph.NETWORK_NAMES) == set(fsdiffreg.NETWORKS)


def test_a_setting_unknown_to_the_method_names_it_and_the_known_ones():
    configs.check_config("dgir", 2, {"lam": 1.0, "t": 50})
    with pytest.raises(InputError, match=r"^row 3: unknown setting\(s\) lamda for method dgir \(known: .*\blam\b"):
        configs.check_config("dgir", 2, {"lamda": 1.0}, where="row 3")
    with pytest.raises(InputError, match=r"^unknown method 'nosuch' \(known: cyclemorph, dgir, diffusemorph,"):
        configs.config_class("nosuch")


def test_a_plugin_method_registered_with_its_own_config_is_known():
    @dataclass
    class OwnConfig(TrainerConfig):
        depth: int = 3

    class Own(Method):
        name = "own_method_for_test"
        Config = OwnConfig

        def register(self, moving, fixed, generator=None):
            raise NotImplementedError

    METHODS.register(Own.name)(Own)
    try:
        assert configs.is_method(Own.name) and Own.name in configs.method_names()
        assert configs.config_class(Own.name) is OwnConfig
        configs.check_config(Own.name, 2, {"depth": 4, "lr": 1e-4})
        with pytest.raises(InputError, match="unknown setting"):
            configs.check_config(Own.name, 2, {"width": 4})
    finally:
        METHODS._items.pop(Own.name)


def test_the_launch_check_of_every_paper_imports_no_torch(tmp_path):
    """What `nextflow run` waits for before its first task: every paper's rows and settings checked and
    the run planned, here for `-profile test --papers all`, without the networks' imports."""
    from tests.reliability.test_launch_rejections import BASE

    params = tmp_path / "params.json"
    params.write_text(json.dumps({**BASE, "papers": "all"}))
    code = ("import sys; from diffreg.cli import main; "
            f"rc = main(['launch', '--params', {str(params)!r}, '--out', {str(tmp_path / 'launch.json')!r}]); "
            "print(rc, 'torch' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]), "DIFFREG_PLUGINS": "",
           "DIFFREG_TASK_SERVER": "0"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "0 False"
    launch = json.loads((tmp_path / "launch.json").read_text())
    assert [Path(p).stem for p in launch["papers"]] == ["dgir", "diffusemorph", "diffusereg", "ldm_morph", "m2m_reg"]
    assert "trainings" in launch["summary"]

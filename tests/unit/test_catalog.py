"""diffreg.catalog names every registered method and baseline with the module that registers it, so
that the launch check can read the names without importing torch."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from diffreg import catalog
from diffreg.baselines import BASELINES
from diffreg.methods import METHODS

ROOT = Path(__file__).resolve().parents[2]


def test_each_registry_holds_exactly_its_catalog_each_name_from_its_module():
    for registry, listed, package in ((METHODS, catalog.METHODS, "diffreg.methods"),
                                      (BASELINES, catalog.BASELINES, "diffreg.baselines")):
        assert registry.names() == sorted(listed)
        for name, module in listed.items():
            assert registry.get(name).__module__ == f"{package}.{module}", name


def test_the_launch_check_knows_the_names_without_importing_torch():
    code = """
import sys
from diffreg.errors import InputError
from diffreg.launch import _check_registered
_check_registered({"methods": "voxelmorph,dgir", "baselines": "syn=test,niftyreg"})
try:
    _check_registered({"methods": "voxelmorph,nosuch", "baselines": ""})
except InputError as exc:
    print(exc)
print("torch" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    message, torch_imported = out.stdout.splitlines()
    assert "nosuch" in message and "voxelmorph" not in message.split("known:")[0]
    assert message.endswith(f"(known: {', '.join(sorted(catalog.METHODS))})")
    assert torch_imported == "False"

"""Each method's typed settings (a MethodConfig dataclass) and the values they are checked against,
one module per method family, importable without torch. The launch check and the planner check
every row of every paper with them (setting names, a paper's aliases, the registration-only
settings) without importing the networks; diffreg.methods builds the methods on top of them.

Adding a method is its module in diffreg/methods/, its Config here and its line in CONFIGS;
tests/unit/test_configs.py holds CONFIGS and the method registry equal.
"""
from __future__ import annotations

import importlib
import sys

from ..errors import InputError
from ..training.config import MethodConfig

# method name -> "module.Class" of its settings in this package
CONFIGS = {
    "voxelmorph": "pairwise.PairwiseConfig",
    "dgir": "dgir.DGIRConfig",
    "diffusemorph": "diffusemorph.DiffuseMorphConfig",
    "gradicon": "gradicon.GradICONConfig",
    "unigradicon": "gradicon.UniGradICONConfig",
    "symnet": "symnet.SYMNetConfig",
    "cyclemorph": "cyclemorph.CycleMorphConfig",
    "vtn": "vtn.VTNConfig",
    "fsdiffreg": "fsdiffreg.FSDiffRegConfig",
    "m2m_reg": "m2m_reg.M2MRegConfig",
    "diffusereg": "diffusereg.DiffuseRegConfig",
    "ldm_morph": "ldm_morph.LDMMorphConfig",
}


def _registered():
    """The method registry when diffreg.methods is already imported (a plugin that registers a
    method imports it), else None: the built-in methods need no torch to be checked."""
    if "diffreg.methods" not in sys.modules:
        return None
    return sys.modules["diffreg.methods"].METHODS


def method_names() -> list[str]:
    registry = _registered()
    return sorted(set(CONFIGS) | set(registry.names() if registry is not None else ()))


def is_method(name: str) -> bool:
    registry = _registered()
    return name in CONFIGS or (registry is not None and name in registry)


def config_class(name: str) -> type[MethodConfig]:
    """The settings class of method `name`; one InputError line listing the methods if none."""
    if name in CONFIGS:
        module, cls = CONFIGS[name].rsplit(".", 1)
        return getattr(importlib.import_module(f"{__name__}.{module}"), cls)
    registry = _registered()
    if registry is not None and name in registry:
        return registry.get(name).Config
    raise InputError(f"unknown method '{name}' (known: {', '.join(method_names())})")


def check_config(name: str, ndim: int, config: dict, where: str = "") -> None:
    """Raise InputError when `name` is no method or `config` holds a setting the method does not
    have (the planner calls this for every row, so a typo stops the plan, naming `where`)."""
    prefix = f"{where}: " if where else ""
    if not is_method(name):
        raise InputError(f"{prefix}unknown method '{name}' (known: {', '.join(method_names())})")
    known = config_class(name).settings(ndim)
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise InputError(f"{prefix}unknown setting(s) {', '.join(unknown)} for method {name} "
                         f"(known: {', '.join(sorted(known))})")


__all__ = ["CONFIGS", "check_config", "config_class", "is_method", "method_names"]

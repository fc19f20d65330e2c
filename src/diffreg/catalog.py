"""The module that registers each method and baseline, by name, readable without importing torch:
the launch check names them in a fraction of a second instead of after torch's imports.
`diffreg.methods` and `diffreg.baselines` import exactly these modules, and
tests/unit/test_catalog.py holds each registry equal to its list here.

Adding a method (or baseline) is its module plus its line here.
"""
from __future__ import annotations

METHODS = {
    "voxelmorph": "pairwise",
    "dgir": "dgir",
    "diffusemorph": "diffusemorph",
    "gradicon": "gradicon",
    "unigradicon": "gradicon",
    "symnet": "symnet",
    "cyclemorph": "cyclemorph",
    "vtn": "vtn",
    "fsdiffreg": "fsdiffreg",
    "m2m_reg": "m2m_reg",
    "diffusereg": "diffusereg",
    "ldm_morph": "ldm_morph",
}

BASELINES = {
    "syn": "syn",
    "niftyreg": "niftyreg",
    "lddmm": "lddmm",
    "fireants": "fireants",
}


def modules(catalog: dict[str, str]) -> list[str]:
    """Each registering module once, in the catalog's order."""
    return list(dict.fromkeys(catalog.values()))

"""``brain``: the head population of diffreg.data.toy, unchanged (its files are byte-identical to
``diffreg toy-data`` before the registry existed). ``oasis`` (oasis.py) is the same population
with finer labels."""
from __future__ import annotations

from ..toy import ToyConfig, generate
from . import StandIn, register

_SUMMARY = "synthetic heads from MNI/ROBEX anatomy: T1 with and without skull, T2-like, CSF/GM/WM labels"
register(StandIn("brain", ToyConfig, generate, "neurite-oasis", _SUMMARY))

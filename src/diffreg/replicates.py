"""Trainings repeated with different seeds (``--seeds N``): how a replicate is named.

Replicate 0 keeps the plain registration label, so a run with one seed is exactly the run it
always was; replicate k >= 1 trains with seed ``--seed + k`` and its label ends in ``~seed<k>``.
The report reads the replicate back from the label alone, so metrics CSVs need no extra column.
"""
from __future__ import annotations

SEED_MARK = "~seed"
MAX_SEEDS = 100


def seed_label(label: str, k: int) -> str:
    return label if k == 0 else f"{label}{SEED_MARK}{k}"


def split_seed(label: str) -> tuple[str, int]:
    """'x~seed2' -> ('x', 2); a label without the mark is replicate 0."""
    base, mark, k = str(label).rpartition(SEED_MARK)
    if mark and k.isdigit():
        return base, int(k)
    return str(label), 0


__all__ = ["SEED_MARK", "MAX_SEEDS", "seed_label", "split_seed"]

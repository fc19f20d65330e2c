"""Metrics of a registration's own saved trajectory, without reference frames.

A sampling method (DiffuseReg) saves its field after chosen sampling steps as
``disp_step<k>.nii.gz``, with ``trajectory_times`` in run.json: the share of the steps done when
field k was saved (0 = the starting noise, 1 = the sample). DiffuseReg's Fig. 3 claim, "as the
sampling process progresses to 400 steps (t = 1600), the noise in the deformation field has been
almost eliminated", is measured as

    trajectory_late_change = ||u(1) - u(s)|| / ||u(1) - u(0)||,   s = LATE_FROM = 0.2 (400 of 2000),

the Euclidean norm over every voxel and component (voxel units: the ratio has none): how much of
the way from the starting field to the final one is still to go after 20 % of the steps. A
trajectory that has stopped moving by s gives 0, one that moves at a constant rate gives 0.8.
A registration gets a row only when its saved trajectory has the times 0, s and 1 (DiffuseReg's
default `save_steps`, every 10 % of the steps); so baselines and other step grids (DiffuseMorph's
seven deformation scales) add nothing to their tables. A trajectory that does not move scores NaN.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from diffreg.io import read_field

LATE_FROM = 0.2          # the paper's 400 of 2000 sampling steps
TIME_TOLERANCE = 1e-6
METRICS = ("trajectory_late_change",)


def _index_at(times: Sequence[float], t: float) -> int | None:
    return next((i for i, ti in enumerate(times) if abs(float(ti) - t) <= TIME_TOLERANCE), None)


def late_change_indices(times: Sequence[float], start: float = LATE_FROM) -> tuple[int, int, int] | None:
    """(index of time 0, of `start`, of time 1) among the saved times, or None when one is missing."""
    found = tuple(_index_at(times, t) for t in (0.0, start, 1.0))
    return None if any(i is None for i in found) else found


def late_change(first: np.ndarray, at_start: np.ndarray, last: np.ndarray) -> float:
    """||last - at_start|| / ||last - first||; NaN when the trajectory does not move at all."""
    total = float(np.linalg.norm((last - first).astype(np.float64)))
    if not np.isfinite(total) or total == 0.0:
        return float("nan")
    return float(np.linalg.norm((last - at_start).astype(np.float64))) / total


def trajectory_late_change(fields: Sequence[np.ndarray], times: Sequence[float], start: float = LATE_FROM) -> float:
    """The metric on fields held in memory (one per saved time)."""
    idx = late_change_indices(times, start)
    return float("nan") if idx is None else late_change(*(fields[i] for i in idx))


def score_saved_trajectory(folder: Path, run: dict, want: Callable[[str], bool]) -> list[tuple[str, str, float]]:
    """The rows (label "all": a whole-field value; metric; value) of a registration folder whose
    saved trajectory has the times 0, LATE_FROM and 1, else none. Reads only those three fields."""
    idx = late_change_indices([float(t) for t in (run.get("trajectory_times") or [])])
    if idx is None or not want(METRICS[0]):
        return []
    return [("all", METRICS[0], late_change(*(read_field(Path(folder) / f"disp_step{i}.nii.gz")[0] for i in idx)))]


__all__ = ["LATE_FROM", "METRICS", "late_change", "late_change_indices", "trajectory_late_change",
           "score_saved_trajectory"]

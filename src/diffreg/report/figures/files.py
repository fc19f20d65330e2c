"""Writing a computed figure's files: its numbers as CSV and its drawing as PNG, atomically."""
from __future__ import annotations

import csv
from pathlib import Path

from diffreg.io import atomic_path

from .common import plt

PNG_DPI = 120


def write_csv(path: Path, rows: list[dict]) -> Path:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def save_png(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=PNG_DPI, format="png")
    plt.close(fig)
    return path

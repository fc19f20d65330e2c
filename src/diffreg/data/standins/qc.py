"""A QC picture of an embedded dataset: a few subjects, every image modality with its label map
drawn over it (mid slice of volumes), read back from the files the stand-in wrote, so that the
picture shows what the pipeline will read. Faces also show their landmarks."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ...io import atomic_path
from ..samplesheet import labels_column, modalities


def _mid(arr: np.ndarray) -> np.ndarray:
    arr = np.asarray(arr)
    while arr.ndim > 2 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return arr[:, :, arr.shape[2] // 2] if arr.ndim == 3 else arr


def _pick(df: pd.DataFrame, n: int, first_image: str) -> pd.DataFrame:
    """Test subjects first (those evaluated), then the others, in sheet order; rows sharing their
    first image (the expressions of one face) after rows that show a new one."""
    seen = df[first_image].duplicated()
    order = sorted(range(len(df)), key=lambda i: (bool(seen.iloc[i]), df["split"].iloc[i] != "test", i))
    return df.iloc[order[:n]]


def render_qc(folder: str | Path, out_png: str | Path, n_subjects: int = 3, title: str | None = None) -> Path:
    """Write `out_png` for the stand-in in `folder` (samplesheet.csv, labels.json); return its path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import nibabel as nib
    from matplotlib.colors import ListedColormap

    folder = Path(folder)
    df = pd.read_csv(folder / "samplesheet.csv", dtype=str, keep_default_na=False)
    names = {int(k): v for k, v in json.loads((folder / "labels.json").read_text()).items()}
    mods = modalities(df)
    rows = _pick(df, n_subjects, f"image_{mods[0]}")
    load = lambda p: np.asarray(nib.load(str(folder / p)).dataobj, dtype=np.float32)  # noqa: E731
    n_lab = max(names) + 1
    colours = plt.get_cmap("tab10" if n_lab <= 10 else "tab20")(np.arange(n_lab) % (10 if n_lab <= 10 else 20))
    colours[0, 3] = 0.0
    cmap = ListedColormap(colours)
    fig, axes = plt.subplots(len(rows), len(mods), figsize=(2.4 * len(mods), 2.4 * len(rows) + 0.6), squeeze=False)
    for r, (_, row) in enumerate(rows.iterrows()):
        for c, mod in enumerate(mods):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if not row[f"image_{mod}"]:
                continue
            ax.imshow(_mid(load(row[f"image_{mod}"])).T, cmap="gray", origin="lower", vmin=0, vmax=1,
                      interpolation="nearest")
            lab_col = labels_column(df, mod)
            if lab_col and row.get(lab_col):
                lab = _mid(load(row[lab_col])).astype(int)
                ax.imshow(np.ma.masked_equal(lab.T, 0), cmap=cmap, origin="lower", vmin=-0.5, vmax=n_lab - 0.5,
                          alpha=0.35, interpolation="nearest")
            if row.get("landmarks"):
                lm = pd.read_csv(folder / row["landmarks"])
                if f"x_{mod}" in lm.columns:
                    ax.plot(lm[f"x_{mod}"], lm[f"y_{mod}"], "+", color="yellow", ms=5, mew=1)
            ax.set_title(f"{row['subject']} {mod}", fontsize=7)
    present = [k for k in sorted(names) if k]
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(k)) for k in present]
    fig.legend(handles, [names[k] for k in present], loc="lower center", ncol=min(4, max(1, len(present))),
               fontsize=6, frameon=False)
    fig.suptitle(title or f"{folder.name}: {len(df)} subjects, labels over images", fontsize=9)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    out_png = Path(out_png)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=90, format="png", metadata={"Software": None})   # no version stamp: same bytes
    plt.close(fig)
    return out_png

"""The embedded datasets' QC pictures (``diffreg toy-data --qc``: ``<dataset>_standin.png``) as
report figures, so that a reader sees what each stand-in looks like beside the numbers it made."""
from __future__ import annotations

import base64
from pathlib import Path

STANDIN_SUFFIX = "_standin.png"


def standin_figures(image_dirs: list[Path]) -> list[dict]:
    found = sorted({p.name: p for d in image_dirs if d.is_dir() for p in d.rglob(f"*{STANDIN_SUFFIX}")}.items())
    figs = []
    for name, path in found:
        dataset = name[: -len(STANDIN_SUFFIX)]
        figs.append({"heading": f"Embedded data: {dataset}",
                     "alt": f"images and label maps of a few subjects of the embedded {dataset} stand-in",
                     "png_b64": base64.b64encode(path.read_bytes()).decode("ascii"),
                     "caption": f"the stand-in for {dataset} (docs/datasets.md says what it can and cannot "
                                "speak to): every modality of a few test subjects, mid slice, labels drawn over."})
    return figs

"""M2M-Reg's computed figure: Fig. 1a, the LNCC (warped source vs target, multi-modal) and the Dice
of GradICON during training, without and with M2M-Reg, from the curves of the stage
`m2m_training_curves` (stages/m2m_curves.py)."""
from __future__ import annotations

import shutil
from pathlib import Path

from diffreg.errors import InputError

from .common import plt
from .registry import check_config, register

SETTINGS = {"curves": None}       # the stage's CSV (a {stage: ...} dependency)
LABELS = {"baseline": "GradICON (multi-modal LNCC)", "m2m_reg": "GradICON + M2M-Reg"}


@register("m2m_reg.training_curves", SETTINGS)
def training_curves(moving: Path, fixed: Path, config: dict, outdir: Path, seed: int, device: str) -> list[Path]:
    """fig1a_curves.png (LNCC and Dice against the iteration, one line per scheme) and fig1a_curves.csv."""
    import pandas as pd

    s = check_config("m2m_reg.training_curves", config)
    if not s["curves"] or not Path(s["curves"]).is_file():
        raise InputError("figure m2m_reg.training_curves needs the setting curves (the m2m_training_curves file)")
    df = pd.read_csv(s["curves"])
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(8.5, 3), constrained_layout=True)
    for ax, metric, name in zip(axes, ("lncc", "dice"), ("LNCC (warped source vs target)", "DSC")):
        for scheme, part in df.groupby("scheme", sort=False):
            ax.plot(part["iteration"], part[metric], label=LABELS.get(scheme, scheme))
        ax.set_xlabel("iteration")
        ax.set_ylabel(name)
    axes[0].legend(fontsize=7)
    png = outdir / "fig1a_curves.png"
    fig.savefig(png, dpi=110, bbox_inches="tight")
    plt.close(fig)
    csv = outdir / "fig1a_curves.csv"
    shutil.copyfile(s["curves"], csv)
    return [png, csv]

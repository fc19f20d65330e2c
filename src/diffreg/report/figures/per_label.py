"""Dice per structure as grouped box plots: one group per label, one box per row (DiffuseMorph
Fig. 10 draws its brain structures this way). The pairs' values, not their means, make each box."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .common import plt, png_bytes

SUMMARY_LABELS = ("mean", "all")   # the mean over labels and the union of the foreground: not a structure


def per_label_values(metrics: pd.DataFrame, metric: str = "dice") -> pd.DataFrame:
    """Rows of `metric` per label (the summaries left out), label as text, with the values
    before registration (`<metric>_before`, once per pair) as row 'initial' first."""
    per = metrics[~metrics["label"].astype(str).isin(SUMMARY_LABELS)]
    before = per[per["metric"] == f"{metric}_before"].drop_duplicates(subset=["dataset", "pair", "label"])
    d = pd.concat([before.assign(method="initial", metric=metric), per[per["metric"] == metric]], ignore_index=True)
    return d.assign(label=d["label"].astype(str))


def dice_per_label_boxplot(metrics: pd.DataFrame, title: str, names: dict[str, str] | None = None,
                           rows: list[str] | None = None, metric: str = "dice") -> bytes | None:
    """Grouped box plot of `metric` per label and row, in the order of `rows` (else as found);
    `names` maps a label value to its name for the axis. None when there is nothing per label."""
    d = per_label_values(metrics, metric).dropna(subset=["value"])
    if d.empty:
        return None
    methods = [r for r in dict.fromkeys(["initial", *(rows or pd.unique(d["method"]))]) if r in set(d["method"])]
    labels = _label_order(list(pd.unique(d["label"])), names or {})
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(max(4.5, 1.2 + 0.35 * len(methods) * len(labels)), 3.6))
    colours = plt.get_cmap("tab10")
    for k, m in enumerate(methods):
        data = [d.loc[(d["method"] == m) & (d["label"] == lab), "value"].to_numpy() for lab in labels]
        pos = np.arange(len(labels)) + (k - (len(methods) - 1) / 2) * width
        keep = [i for i, v in enumerate(data) if len(v)]
        if not keep:
            continue
        box = ax.boxplot([data[i] for i in keep], positions=pos[keep], widths=width * 0.85,
                         showfliers=False, patch_artist=True)
        for patch in box["boxes"]:
            patch.set_facecolor(colours(k % 10))
            patch.set_alpha(0.75)
        ax.plot([], [], color=colours(k % 10), lw=6, alpha=0.75, label=m)   # legend entry
    ax.set_xticks(range(len(labels)), [(names or {}).get(lab, lab) for lab in labels])
    plt.setp(ax.get_xticklabels(), rotation=25, ha="right")
    ax.set_ylabel("Dice" if metric == "dice" else metric)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))   # outside: boxes reach 0 and 1
    return png_bytes(fig)


def _label_order(found: list[str], names: dict[str, str]) -> list[str]:
    """Labels as the task lists them (by value, or by name where the metrics carry names), then
    numeric values, then the rest alphabetically."""
    listed = [v for pair in names.items() for v in pair]
    rank = {v: i // 2 for i, v in enumerate(listed)}
    return sorted(found, key=lambda v: (rank.get(v, len(rank)), not v.lstrip("-").isdigit(),
                                        int(v) if v.lstrip("-").isdigit() else 0, v))

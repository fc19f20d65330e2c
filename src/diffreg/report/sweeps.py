"""A sweep artifact: one row per value of a swept setting, its table, best value and curve."""
from __future__ import annotations

import numpy as np
import pandas as pd

from diffreg.report import tables
from diffreg.report.claims import LOWER_IS_BETTER
from diffreg.report.experiment_rows import NO_METRICS, RAN, row_stats

def sweep_value(v: str):
    """A swept row's value as the number it spells (int when whole), else the text."""
    try:
        f = float(v)
    except ValueError:
        return v
    return int(f) if f.is_integer() else f


def sweep_table(uses: pd.DataFrame, df: pd.DataFrame, metric: str = "dice") -> pd.DataFrame:
    """One line per swept value: value, <metric>_mean, <metric>_sd, n (pairs), status."""
    stats = row_stats(df, metric) if len(df) else {}
    recs = []
    for _, u in uses.drop_duplicates("row").iterrows():    # the replicates of --seeds are one value
        mean, sd, n = stats.get(u["row"], (float("nan"), float("nan"), 0))
        st = u["status"] if u["status"] != RAN or n else NO_METRICS.replace(" ", "_")
        recs.append({"value": sweep_value(u["value"]), f"{metric}_mean": mean, f"{metric}_sd": sd, "n": n, "status": st})
    out = pd.DataFrame(recs, columns=["value", f"{metric}_mean", f"{metric}_sd", "n", "status"])
    # numbers ascending, then any non-numeric values by name
    keys = [(isinstance(v, str), 0 if isinstance(v, str) else v, str(v)) for v in out["value"]]
    return out.iloc[sorted(range(len(out)), key=keys.__getitem__)].reset_index(drop=True)


def sweep_best(table: pd.DataFrame, metric: str = "dice"):
    """(value, mean) of the best swept value among those with data, or None."""
    d = table[table["n"] > 0]
    if d.empty:
        return None
    col = d[f"{metric}_mean"]
    i = col.idxmin() if metric in LOWER_IS_BETTER else col.idxmax()
    return d.loc[i, "value"], float(d.loc[i, f"{metric}_mean"])


def sweep_figure(table: pd.DataFrame, param: str, title: str, metric: str = "dice") -> bytes | None:
    from diffreg.report.figures import plt, png_bytes  # deferred: pulls in matplotlib
    d = table[table["n"] > 0]
    if d.empty:
        return None
    x = d["value"].to_numpy()
    numeric = all(isinstance(v, (int, float)) for v in x)
    xs = x.astype(float) if numeric else np.arange(len(x))
    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    ax.errorbar(xs, d[f"{metric}_mean"], yerr=d[f"{metric}_sd"].fillna(0.0), marker="o", color="#1f4e9c",
                capsize=3, lw=1.3)
    best, val = sweep_best(table, metric)
    bx = float(best) if numeric else list(x).index(best)
    ax.plot([bx], [val], marker="*", ms=16, color="#c0392b", ls="none", label=f"best: {param} = {best} ({val:.3f})")
    if not numeric:
        ax.set_xticks(xs, [str(v) for v in x])
    ax.set_xlabel(param)
    ax.set_ylabel(f"mean {tables.column_title(metric)} ± SD over pairs")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return png_bytes(fig)

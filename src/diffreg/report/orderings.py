"""Claims about several rows at once: an ordering ("Dice rises with each module"), a trend with a
tolerance ("more pre-aligned pairs help, up to noise") and a distribution claim ("higher median
and tighter box"). Each is built from the paired comparisons of ``stats`` so that its verdict
means what a single comparison's does.

* ``order``: each row better than the one listed before it; an intersection-union test over the
  consecutive comparisons (holds only when every step is significant).
* ``trend``: no row worse than an earlier one by more than ``margin`` (the upper end of the 95 %
  interval of the paired drop must lie within the margin for *holds*), and the last row better
  than the first (significantly for *holds*).
* ``median_iqr``: the claimed row has the best median and the smallest interquartile range; a
  paired bootstrap over the pairs (same resamples for every row) gives how often both stay true:
  at least 95 % of resamples for *holds*, observed but less often for *consistent*.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from diffreg.report import stats
from diffreg.report.stats import Verdict, _cmp_text, _line, compare


def all_of(parts: list[tuple[str, Verdict]]) -> Verdict:
    """Several clauses that must all hold: the weakest verdict wins (a failing clause first)."""
    rank = {stats.FAILS: 0, stats.UNTESTABLE: 1, stats.CONSISTENT: 2, stats.HOLDS: 3}
    worst = min(parts, key=lambda p: rank[p[1].verdict])[1].verdict
    reason = "; ".join(f"{name}: {v.verdict} ({v.reason})" for name, v in parts if v.verdict == worst)
    lines, seen = [], set()
    for _, v in parts:
        for ln in v.lines:
            key = (ln["row"], ln.get("n_paired"), round(float(ln["diff"]), 12) if ln["diff"] == ln["diff"] else None)
            if key not in seen:
                seen.add(key)
                lines.append(ln)
    return Verdict(worst, reason, lines)


def ordered(rows: list[str], values: dict[str, pd.Series], lower: bool) -> Verdict:
    """Each of ``rows`` better than the one before it."""
    missing = [r for r in rows if r not in values]
    if missing:
        return Verdict(stats.UNTESTABLE, f"{', '.join(missing)} did not run")
    if len(rows) < 2:
        return Verdict(stats.UNTESTABLE, "an ordering needs at least two rows")
    steps = [(f"{b} > {a}", stats.better_than_all(b, values, [a], lower)) for a, b in zip(rows, rows[1:])]
    return all_of(steps)


def trend(rows: list[str], values: dict[str, pd.Series], lower: bool, margin: float) -> Verdict:
    """Later rows never worse than earlier ones by more than ``margin``; the last better than the first."""
    missing = [r for r in rows if r not in values]
    if missing:
        return Verdict(stats.UNTESTABLE, f"{', '.join(missing)} did not run")
    if len(rows) < 2:
        return Verdict(stats.UNTESTABLE, "a trend needs at least two rows")
    sign = -1.0 if lower else 1.0
    lines = [_line(rows[0], values[rows[0]])]
    worst_drop, worst_text, drop_hi = -np.inf, "", -np.inf
    for j, later in enumerate(rows[1:], start=1):
        for earlier in rows[:j]:
            c = compare(values[later], values[earlier], earlier, lower)
            if c.n < stats.MIN_PAIRS:
                return Verdict(stats.UNTESTABLE, f"fewer than {stats.MIN_PAIRS} paired values of {later} and {earlier}")
            drop = -sign * c.diff                        # how much worse `later` is (metric units, >0 worse)
            hi = max(-sign * c.diff_ci[0], -sign * c.diff_ci[1])
            if drop > worst_drop:
                worst_drop, worst_text = drop, _cmp_text(later, c)
            drop_hi = max(drop_hi, hi)
        lines.append(_line(later, values[later], compare(values[later], values[rows[0]], rows[0], lower)))
    first_last = stats.better_than_all(rows[-1], values, [rows[0]], lower)
    text = f"largest drop {stats.fmt(max(worst_drop, 0.0))} ({worst_text}); margin {margin:g}"
    if worst_drop > margin:
        return Verdict(stats.FAILS, f"a later row is worse than an earlier one by more than the margin: {text}", lines)
    if first_last.verdict == stats.FAILS:
        return Verdict(stats.FAILS, f"the last row is not better than the first: {first_last.reason}", lines)
    if first_last.verdict == stats.UNTESTABLE:
        return Verdict(stats.UNTESTABLE, f"first vs last: {first_last.reason}", lines)
    if drop_hi <= margin and first_last.verdict == stats.HOLDS:
        return Verdict(stats.HOLDS, f"every drop's interval within the margin and the last row significantly "
                                    f"better than the first: {text}; {first_last.reason}", lines)
    return Verdict(stats.CONSISTENT, f"the trend is seen, not significantly: {text}; {first_last.reason}", lines)


def _median_iqr(x: np.ndarray) -> tuple[float, float]:
    q1, med, q3 = np.quantile(x, [0.25, 0.5, 0.75], axis=-1)
    return med, q3 - q1


def median_iqr(claimed: str, values: dict[str, pd.Series], others: list[str], lower: bool) -> Verdict:
    """``claimed`` has the best median and the smallest IQR of ``others`` (paired bootstrap)."""
    if claimed not in values:
        return Verdict(stats.UNTESTABLE, f"{claimed} did not run")
    others = [o for o in others if o in values and o != claimed]
    if not others:
        return Verdict(stats.UNTESTABLE, f"{claimed}: no other row ran")
    table = pd.concat([values[r].rename(r) for r in [claimed, *others]], axis=1, join="inner").dropna()
    if len(table) < 4:
        return Verdict(stats.UNTESTABLE, f"{len(table)} pairs scored by every row; a median and IQR need 4 or more")
    x = table.to_numpy(float).T                           # rows x pairs
    med, iqr = _median_iqr(x)
    best_med = (med[0] <= med[1:]).all() if lower else (med[0] >= med[1:]).all()
    tight = (iqr[0] <= iqr[1:]).all()
    rng = np.random.default_rng(stats.SEED)
    idx = rng.integers(0, x.shape[1], size=(stats.N_BOOT, x.shape[1]))
    bm, bi = _median_iqr(x[:, idx])                       # rows x resamples
    keep_med = (bm[0] <= bm[1:]).all(axis=0) if lower else (bm[0] >= bm[1:]).all(axis=0)
    share = float((keep_med & (bi[0] <= bi[1:]).all(axis=0)).mean())
    desc = ", ".join(f"{r} median {stats.fmt(m)} IQR {stats.fmt(q)}" for r, m, q in zip(table.columns, med, iqr))
    lines = [_line(r, table[r]) for r in table.columns]
    if not (best_med and tight):
        what = " and ".join(w for w, ok in (("the best median", best_med), ("the smallest IQR", tight)) if not ok)
        return Verdict(stats.FAILS, f"{claimed} lacks {what}: {desc}", lines)
    why = f"both kept in {share:.0%} of {stats.N_BOOT:,} paired resamples: {desc}"
    return Verdict(stats.HOLDS if share >= stats.LEVEL else stats.CONSISTENT, why, lines)


__all__ = ["all_of", "ordered", "trend", "median_iqr"]

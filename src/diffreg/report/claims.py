"""Claim checks of an experiment YAML, judged with paired statistics (``stats``).

A claim is judged on *values*: one long table ``row, pair, metric, value`` holding, per row of
the artifact (a table's row, a sweep's value, a figure's measure or variant), its value on each
test pair (or figure point), plus the row ``initial`` (Dice before registration) when the metric
is Dice. `diffreg experiment-artifacts` writes them as ``<artifact>.values.csv`` and the check
into index.json, so `diffreg report` judges every claim again from the published folder alone.

Checks (``claim.check`` in the YAML)::

    {metric: dice, best: ROW, among: all}          ROW is better than every other row that ran
    {metric: dice, run: ROW, within: D, of: OTHER} |ROW - OTHER| <= D (equivalence)
    {metric: m, run: ROW, at_most: L}              ROW's mean <= L (a threshold the paper's words set)
    {file: CSV, metric: error_px, best: MEASURE}   MEASURE (or the best of a list) beats the rest
    {file: CSV, metric: error_px, compare: [A, B]} variant A is better than B
    {metric: dice, better: A, than: B}             A is better than B (paired)
    {metric: dice, order: [A, B, C]}               each row better than the one before it
    {metric: dice, trend: [A, B, C], margin: D}    never worse than an earlier row by more than D,
                                                   the last better than the first
    {metric: dice, median_iqr: ROW, among: all}    ROW has the best median and the smallest IQR
    {metric: dice, argmax_in: [values]}            the best swept value is one of these
    {metric: dice, argmax_in_range: [lo, hi]}      ... lies in [lo, hi]
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from diffreg.replicates import seed_label
from diffreg.report import orderings, stats
from diffreg.report.stats import Verdict

VALUE_COLUMNS = ["row", "pair", "metric", "value"]
INITIAL = "initial"
LOWER_IS_BETTER = {"pct_jac_nonpos", "sdlogj", "hd95_vox", "hd95_mm", "pct_nondiff", "ndv_pct", "njd", "jsd",
                   "trajectory_late_change", "nmse", "mse", "nmse_continuous", "landmark_mse", "landmark_mse_before",
                   "landmark_mse_continuous", "runtime_s", "register_time_s", "error_px", "nmse_generated"}
MEAN_LABELS = ("mean", "all")


def _num(v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return v
    return int(f) if f.is_integer() else f


# ----------------------------------------------------------------------------- values

def _over_seeds(sel: pd.DataFrame, seeds: list) -> pd.DataFrame:
    """Rows trained with several seeds (--seeds): one unit per (pair, seed), the pair named
    ``<pair>~seed<k>``; a row with one seed (a classical method, the initial alignment) takes the
    same value in every seed's unit, so that paired tests run over seeds x pairs."""
    if len(seeds) < 2:
        return sel.groupby(["method", "pair"], sort=False)["value"].mean().reset_index()
    per = sel.groupby(["method", "pair", "seed"], sort=False)["value"].mean().reset_index()
    several = per.groupby("method")["seed"].transform("nunique") > 1
    single = per[~several].drop(columns="seed").merge(pd.DataFrame({"seed": seeds}), how="cross")
    out = pd.concat([per[several], single], ignore_index=True)
    out["pair"] = [seed_label(str(p), int(k)) for p, k in zip(out["pair"], out["seed"])]
    return out[["method", "pair", "value"]]


def metric_values(df: pd.DataFrame, metric: str, rename: dict[str, str] | None = None,
                  initial: bool = False) -> pd.DataFrame:
    """Per (row, pair) values of `metric` (mean/whole label) from long metrics whose ``method`` is
    the row; with Dice (or any metric when ``initial``: a check that names the row), the value
    before registration (``<metric>_before``, one value per pair) as row initial.
    With a ``seed`` column (rows trained with several seeds) the units are seeds x pairs."""
    if df is None or not len(df):
        return pd.DataFrame(columns=VALUE_COLUMNS)
    d = df[df["label"].isin(MEAN_LABELS)]
    d = d.assign(seed=d["seed"] if "seed" in d.columns else 0)
    seeds = sorted(d.loc[d["metric"] == metric, "seed"].dropna().unique())
    frames = [_over_seeds(d[d["metric"] == metric], seeds).rename(columns={"method": "row"}).assign(metric=metric)]
    if metric == "dice" or initial:
        before = d[d["metric"] == f"{metric}_before"].assign(method=INITIAL, seed=0)
        frames.append(_over_seeds(before, seeds).rename(columns={"method": "row"}).assign(metric=metric))
    out = pd.concat(frames, ignore_index=True)[VALUE_COLUMNS]
    if rename:
        out["row"] = out["row"].map(lambda r: rename.get(r, r))
    return out.dropna(subset=["value"]).reset_index(drop=True)


def file_values(check: dict, path: Path | None) -> tuple[pd.DataFrame | None, str]:
    """Values of a computed figure's CSV: row = its measure (``best``) or variant (``compare``),
    pair = the remaining columns that locate a point (a keypoint, a query pixel), matches excluded."""
    name = str(check["file"])
    if path is None or not path.is_file():
        return None, f"{name} not found"
    metric = check.get("metric", "error_px")
    d = pd.read_csv(path, keep_default_na=False, dtype=str)
    col = "measure" if "best" in check else "variant"
    if metric not in d.columns or col not in d.columns:
        return None, f"{name}: no {col}/{metric} columns"
    keys = [c for c in d.columns if c not in (col, metric) and not c.startswith("match")]
    pair = d[keys].astype(str).agg("/".join, axis=1) if keys else pd.Series("0", index=d.index)
    out = pd.DataFrame({"row": d[col], "pair": pair, "metric": metric,
                        "value": pd.to_numeric(d[metric], errors="coerce")}).dropna(subset=["value"])
    if out.empty:
        return None, f"{name}: no {metric} values (the pair was not marked as aligned)"
    return out.groupby(["row", "pair", "metric"], sort=False)["value"].mean().reset_index()[VALUE_COLUMNS], ""


def _series(values: pd.DataFrame, metric: str) -> dict[str, pd.Series]:
    v = values[values["metric"] == metric] if len(values) else values
    return {str(r): g.set_index("pair")["value"].astype(float) for r, g in v.groupby("row", sort=False)}


# ----------------------------------------------------------------------------- verdicts

def judge(check: dict, values: pd.DataFrame) -> Verdict:
    """The verdict of one claim check on its values."""
    metric = check.get("metric", "error_px" if "file" in check else "dice")
    lower = metric in LOWER_IS_BETTER
    series = _series(values, metric)
    initial = series.pop(INITIAL, None)
    if initial is not None and INITIAL in names_rows(check):   # a check naming the initial row compares with it
        series[INITIAL] = initial
    if "file" in check and "best" in check:
        group = [str(v) for v in check["best"]] if isinstance(check["best"], list) else [str(check["best"])]
        present = [g for g in group if g in series]
        if not present:
            return Verdict(stats.UNTESTABLE, f"no {metric} for {', '.join(group)}")
        pick = min if lower else max
        claimed = pick(present, key=lambda g: series[g].mean())
        others = [r for r in series if r not in group]
        if not others:
            return Verdict(stats.UNTESTABLE, f"only {', '.join(present)} have a {metric}")
        return _prefixed(f"{metric}, {claimed}: ", stats.better_than_all(claimed, series, others, lower))
    if "compare" in check:
        a, b = (str(v) for v in check["compare"])
        missing = [v for v in (a, b) if v not in series]
        if missing:
            return Verdict(stats.UNTESTABLE, f"no {metric} for {', '.join(missing)}")
        return _prefixed(f"{metric}: ", stats.better_than_all(a, series, [b], lower))
    if "best" in check:
        row, among = str(check["best"]), check.get("among", "all")
        others = [r for r in series if r != row and (among == "all" or r in among)]
        return _prefixed(f"{metric}: ", stats.better_than_all(row, series, others, lower, initial))
    if "better" in check:
        a, b = str(check["better"]), str(check["than"])
        return _prefixed(f"{metric}: ", stats.better_than_all(a, series, [b], lower))
    if "order" in check:
        return _prefixed(f"{metric}, order {' < '.join(map(str, check['order']))}: ",
                         orderings.ordered([_row_key(r, series) for r in check["order"]], series, lower))
    if "trend" in check:
        return _prefixed(f"{metric}, trend {' -> '.join(map(str, check['trend']))}: ",
                         orderings.trend([_row_key(r, series) for r in check["trend"]], series, lower,
                                         float(check.get("margin", 0.0))))
    if "median_iqr" in check:
        row, among = str(check["median_iqr"]), check.get("among", "all")
        others = [r for r in series if r != row and (among == "all" or r in among)]
        return _prefixed(f"{metric}: ", orderings.median_iqr(row, series, others, lower))
    if "at_most" in check:
        return _prefixed(f"{metric}: ", stats.at_most(str(check["run"]), series, float(check["at_most"])))
    if "within" in check:
        return _prefixed(f"{metric}: ", stats.within(str(check["run"]), str(check["of"]), series,
                                                    float(check["within"])))
    if "argmax_in" in check or "argmax_in_range" in check:
        return _judge_sweep(check, series, metric, lower, initial)
    return Verdict(stats.UNTESTABLE, f"unknown check {check}")


def _row_key(row, series: dict) -> str:
    """A row named in a check as the values name it: a swept value written 1.0 is the row "1"."""
    name = str(row)
    if name in series:
        return name
    return next((k for k in series if _num(k) == _num(name) and not isinstance(_num(name), str)), name)


def names_rows(check: dict) -> set[str]:
    """The rows a check names explicitly (better/than, order, trend)."""
    named = [check.get("better"), check.get("than")] + list(check.get("order") or []) + list(check.get("trend") or [])
    return {str(r) for r in named if r is not None}


def _judge_sweep(check: dict, series: dict[str, pd.Series], metric: str, lower: bool,
                 initial: pd.Series | None) -> Verdict:
    """The best allowed swept value against every value outside the allowed set."""
    if len(series) < 2:
        return Verdict(stats.UNTESTABLE, f"{len(series)} swept value(s) ran; need at least 2")
    if "argmax_in" in check:
        allowed_set = {_num(str(v)) for v in check["argmax_in"]}
        allowed = (lambda v: _num(v) in allowed_set)
        what = "in [" + ", ".join(str(v) for v in sorted(allowed_set, key=lambda v: (isinstance(v, str), str(v) if isinstance(v, str) else v))) + "]"
    else:
        lo, hi = (float(v) for v in check["argmax_in_range"])
        allowed = (lambda v: isinstance(_num(v), (int, float)) and lo <= _num(v) <= hi)
        what = f"in [{lo:g}, {hi:g}]"
    inside = [v for v in series if allowed(v)]
    outside = [v for v in series if not allowed(v)]
    ran = ", ".join(series)
    if not inside:
        return Verdict(stats.UNTESTABLE, f"no allowed value ({what}) ran (ran: {ran})")
    if not outside:
        return Verdict(stats.UNTESTABLE, f"every value that ran ({ran}) is {what}: nothing competes")
    pick = min if lower else max
    best = pick(inside, key=lambda v: series[v].mean())
    return _prefixed(f"{metric}, best allowed value {best} ({what}) vs the rest: ",
                     stats.better_than_all(best, series, outside, lower, initial))


def _prefixed(prefix: str, v: Verdict) -> Verdict:
    return Verdict(v.verdict, prefix + v.reason, v.lines)


def claim_table(v: Verdict) -> pd.DataFrame:
    """The numbers behind a verdict, one line per row (``<artifact>.claim.csv``)."""
    cols = ["row", "n", "mean", "ci_lo", "ci_hi", "diff", "diff_lo", "diff_hi", "n_paired", "p"]
    return pd.DataFrame(v.lines, columns=cols)


__all__ = ["VALUE_COLUMNS", "metric_values", "names_rows", "file_values", "judge", "claim_table", "LOWER_IS_BETTER"]

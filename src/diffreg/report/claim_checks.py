"""A claim of an experiment YAML judged on our runs: the values it needs (from the metrics or a
computed figure's CSV), its verdict and the CSVs behind it, and the verdict again at report time.

Claim checks (``claim.check`` in the YAML)::

    {metric: dice, best: ROW, among: all}          ROW has the best mean among rows that ran
    {metric: dice, run: ROW, within: D, of: OTHER} |ROW - OTHER| <= D
    {file: CSV, metric: error_px, best: MEASURE}   MEASURE has the lowest mean error in CSV
    {file: CSV, metric: error_px, compare: [A, B]} variant A has a lower mean error than B
    {metric: dice, argmax_in: [values]}            the sweep value with the best mean is listed
    {metric: dice, argmax_in_range: [lo, hi]}      lo <= that value <= hi

``holds`` is None (not tested) when a needed row did not run or a file is missing.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from diffreg.experiment_model import Claim
from diffreg.report import stats
from diffreg.report.claims import INITIAL, claim_table, file_values, judge, metric_values, names_rows
from diffreg.report.sweeps import sweep_value

def claim_values(check: dict, kind: str, df: pd.DataFrame, uses: pd.DataFrame,
                 folder: Path | None) -> tuple[pd.DataFrame | None, str]:
    """The per-pair values a claim is judged on (claims.py), or None and why there are none."""
    if check.get("file"):
        path = folder / str(check["file"]) if folder else None
        values, why = file_values(check, path)
        return values, why + ("" if folder else " (no figure folder: give --figures)")
    metric = check.get("metric", "dice")
    if kind == "sweep":   # a swept row is named by its value: the check speaks of values
        return metric_values(df, metric, {r: str(sweep_value(v)) for r, v in zip(uses["row"], uses["value"])}), ""
    return metric_values(df, metric, initial=INITIAL in names_rows(check)), ""


def judged_claim(spec_claim: Claim, stem: str, kind: str | None, df: pd.DataFrame, uses: pd.DataFrame,
                  folder: Path | None, files: dict) -> dict:
    """One claim judged on its values; its values and statistics go to ``<stem>.values.csv`` and
    ``<stem>.claim.csv`` in ``files`` (so that `diffreg report` can judge it again)."""
    claim = {"text": spec_claim.text}
    check = spec_claim.check
    if not (check and kind):
        return {**claim, "verdict": stats.UNTESTABLE, "holds": None, "evidence": "no check given"}
    values, why = claim_values(check, kind, df, uses, folder)
    verdict = judge(check, values) if values is not None else stats.Verdict(stats.UNTESTABLE, why)
    if values is not None:
        files[f"{stem}.values.csv"] = values.to_csv(index=False, float_format="%.10g")
        claim["values"] = f"{stem}.values.csv"
    if verdict.lines:
        files[f"{stem}.claim.csv"] = claim_table(verdict).to_csv(index=False, na_rep="nan", float_format="%.10g")
        claim["stats"] = f"{stem}.claim.csv"
    return {**claim, "check": check, "verdict": verdict.verdict, "holds": verdict.holds, "evidence": verdict.reason}


def claim_line(claim: dict) -> str:
    verdict = claim.get("verdict") or {True: stats.HOLDS, False: stats.FAILS}.get(claim.get("holds"), stats.UNTESTABLE)
    return f"Claim: {claim.get('text', '')} — {verdict} ({claim.get('evidence', '')})"


def rejudge(claim: dict, folder: Path) -> dict:
    """The claim judged again from the folder's values CSV with this version's statistics (so
    `make report` renews every verdict without training); as stored when the folder has none."""
    check, name = claim.get("check"), claim.get("values")
    if not check or not name or not (folder / name).is_file():
        return claim
    values = pd.read_csv(folder / name, dtype={"row": str, "pair": str, "metric": str}, keep_default_na=False)
    values["value"] = pd.to_numeric(values["value"], errors="coerce")
    v = judge(check, values)
    return {**claim, "verdict": v.verdict, "holds": v.holds, "evidence": v.reason, "lines": v.lines}

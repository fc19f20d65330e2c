"""Summary tables from long metrics CSVs: mean ± sd per method, optionally beside a paper's numbers.

A table column has a *key*: the metric name for whole-field metrics and label means (``dice`` is
the mean Dice over foreground labels of a pair), ``metric:label`` for per-label columns
(``dice:CSF``). Statistics run over pairs: mean and sample standard deviation (ddof=1), NaN
(a label absent from both maps) skipped. The row ``initial`` is the Dice before registration.

Paper numbers come from an experiment YAML, generic over papers::

    paper: "DGIR (Chen et al. 2024), Table 1"     # or {name: ...}; optional
    artifacts:
      table1:                                      # the artifact column of the metrics CSV
        rows:
          voxelmorph: {dice: 0.754, pct_jac_nonpos: 0.12}
          dgir: {dice: "0.801 ± 0.021"}            # a number, a string, [mean, sd] or {mean, sd}

Each paper value sits in its own column, headed "(paper)", beside ours.
"""
from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from diffreg.experiments import paper_numbers, read_yaml
from diffreg.replicates import split_seed
from diffreg.report.stats import INITIAL_MARGIN


GROUP = ["experiment", "artifact", "dataset"]
INITIAL = "initial"
MEAN_LABELS = ("all", "mean")
PER_LABEL = ("dice",)                 # metrics also shown per label
HIDDEN = ("threads",)                 # shown otherwise (threads column); every <metric>_before: the initial row
BEFORE = "_before"
DEFAULT_COLUMNS = ("dice", "pct_jac_nonpos", "sdlogj", "runtime_s")   # the headline table; table.csv has all
ORDER = ["dice", "dice_structures", "hd95_vox", "hd95_mm", "pct_jac_nonpos", "sdlogj", "pct_nondiff", "ndv_pct", "njd", "jsd",
         "ssim", "psnr", "nmse", "mse", "psnr_continuous", "nmse_continuous", "landmark_mse", "landmark_mse_continuous", "runtime_s"]
NAMES = {
    "dice": "Dice", "hd95_vox": "HD95 (vox)", "hd95_mm": "HD95 (mm)", "ndv_pct": "NDV (%)", "pct_jac_nonpos": "% det J ≤ 0",
    "pct_nondiff": "% non-diffeo. (strict)", "njd": "NJD (%)", "jsd": "JSD", "sdlogj": "SDlogJ",
    "ssim": "SSIM", "psnr": "PSNR (dB)", "nmse": "NMSE", "mse": "MSE", "runtime_s": "Runtime (s)",
    "dice_structures": "Dice (structures)", "psnr_continuous": "PSNR cont. (dB)", "nmse_continuous": "NMSE cont.",
    "landmark_mse": "Landmark MSE", "landmark_mse_continuous": "Landmark MSE cont.",
}


def column_key(metric: str, label: str) -> str | None:
    if metric in HIDDEN or metric.endswith(BEFORE):
        return None
    if label in MEAN_LABELS:
        return metric
    return f"{metric}:{label}" if metric in PER_LABEL else None


def column_title(key: str) -> str:
    metric, _, label = key.partition(":")
    name = NAMES.get(metric, metric)
    return f"{name} {label}" if label else name


def _ordered_keys(keys: list[str]) -> list[str]:
    """Known metrics in ORDER (each followed by its per-label columns), then the rest by name."""
    def rank(k: str):
        metric = k.partition(":")[0]
        return (ORDER.index(metric) if metric in ORDER else len(ORDER), metric if metric not in ORDER else "",
                ":" in k)
    # stable sort keeps the CSV's label order within one metric
    return sorted(keys, key=rank)


# ----------------------------------------------------------------------------- statistics

def _per_pair(df: pd.DataFrame) -> pd.DataFrame:
    """Wide table: one row per (group, method, pair), one column per key."""
    keys = [column_key(m, lab) for m, lab in zip(df["metric"], df["label"])]
    d = df.assign(key=keys).dropna(subset=["key"])
    order = list(pd.unique(d["key"]))
    wide = d.pivot_table(index=GROUP + ["method", "pair"], columns="key", values="value",
                         aggfunc="mean", dropna=False, sort=False)
    return wide.reindex(columns=[k for k in order if k in wide.columns])


def _initial(df: pd.DataFrame) -> pd.DataFrame:
    """Every `<metric>_before` (Dice, NMSE, SSIM, landmark error ... of the images as given) as
    `<metric>` of row "initial", once per pair (every method's row carries the same value)."""
    before = df[df["metric"].str.endswith(BEFORE)].drop_duplicates(subset=GROUP + ["pair", "metric", "label"])
    return before.assign(method=INITIAL, metric=before["metric"].str.slice(0, -len(BEFORE)))


def _after(df: pd.DataFrame) -> pd.DataFrame:
    return df[~df["metric"].str.endswith(BEFORE)]


def with_seeds(df: pd.DataFrame) -> pd.DataFrame:
    """A ``seed`` column (the replicate of --seeds) read from the method labels where there is none;
    labels lose their replicate mark, so the replicates of one row are one method."""
    if "seed" in df.columns:
        return df
    parts = [split_seed(m) for m in df["method"]]
    return df.assign(method=[p[0] for p in parts], seed=[p[1] for p in parts])


def _seed_spread(df: pd.DataFrame, keys: list[str], index: pd.Index) -> pd.DataFrame:
    """Per (group, method): the number of seeds and, per key, the SD over seeds of the per-seed
    means over pairs (NaN with one seed)."""
    d = _after(df)
    d = d.assign(key=[column_key(m, lab) for m, lab in zip(d["metric"], d["label"])]).dropna(subset=["key"])
    per_seed = d.pivot_table(index=GROUP + ["method", "seed", "pair"], columns="key", values="value",
                             aggfunc="mean", sort=False).groupby(level=GROUP + ["method", "seed"], sort=False).mean()
    by_method = per_seed.groupby(level=GROUP + ["method"], sort=False)
    out = pd.DataFrame(index=index)
    out["n_seeds"] = by_method.size().reindex(index).fillna(1).astype(int)
    sd = by_method.std(ddof=1).reindex(index)
    for k in keys:
        out[f"{k}_sd_seeds"] = sd[k] if k in sd.columns else float("nan")
    return out


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (experiment, artifact, dataset, method): n (pairs), <key>_mean, <key>_sd (over
    pairs, of the values averaged over seeds), n_seeds, <key>_sd_seeds (over the per-seed means
    over pairs), threads."""
    df = with_seeds(df)
    wide = _per_pair(pd.concat([_initial(df), _after(df)], ignore_index=True))
    keys = _ordered_keys(list(wide.columns))
    grouped = wide.groupby(level=GROUP + ["method"], sort=False)
    mean = grouped.mean()
    sd = grouped.std(ddof=1)
    out = pd.DataFrame(index=mean.index)
    out["n"] = grouped.size()
    spread = _seed_spread(df, keys, out.index)
    out["n_seeds"] = spread["n_seeds"]
    for k in keys:
        out[f"{k}_mean"] = mean[k]
        out[f"{k}_sd"] = sd[k]
        out[f"{k}_sd_seeds"] = spread[f"{k}_sd_seeds"]
    out["dice_gain_mean"], out["beats_initial"] = _gain_over_initial(wide, out.index)
    threads = df[df["metric"] == "threads"].groupby(GROUP + ["method"])["value"]
    thr = threads.apply(lambda v: "/".join(str(int(t)) for t in sorted(set(v.dropna()))))
    out["threads"] = thr.reindex(out.index).astype(object).fillna("")   # object: a float column would not take ""
    out = out.reset_index()
    # initial first, then methods in the order they appear in the metrics
    first = {m: i for i, m in enumerate(pd.unique(df["method"]))}
    out["_o"] = out["method"].map(lambda m: -1 if m == INITIAL else first.get(m, len(first)))
    return out.sort_values(GROUP + ["_o"], kind="stable").drop(columns="_o").reset_index(drop=True)


def _gain_over_initial(wide: pd.DataFrame, index: pd.Index) -> tuple[pd.Series, pd.Series]:
    """Per (group, method): the mean paired Dice gain over the initial alignment and whether it
    exceeds the margin (the sanity guard); NaN / None for the initial row and rows without Dice."""
    gain = pd.Series(float("nan"), index=index)
    beats = pd.Series(None, index=index, dtype=object)
    if "dice" not in wide.columns:
        return gain, beats
    dice = wide["dice"].reset_index()
    before = dice[dice["method"] == INITIAL].set_index(GROUP + ["pair"])["dice"]
    if before.empty:
        return gain, beats
    rows = dice[dice["method"] != INITIAL].join(before.rename("before"), on=GROUP + ["pair"])
    per = (rows["dice"] - rows["before"]).groupby([rows[c] for c in GROUP + ["method"]], sort=False).mean().dropna()
    for k, g in per.items():
        gain[k] = g
        beats[k] = bool(g > INITIAL_MARGIN)
    return gain, beats


def summary_keys(summary: pd.DataFrame) -> list[str]:
    # <key>_mean columns; <key>_sd and <key>_sd_seeds go with them
    return [c[: -len("_mean")] for c in summary.columns if c.endswith("_mean") and c != "dice_gain_mean"]


# ----------------------------------------------------------------------------- paper numbers

@dataclass
class Paper:
    name: str
    rows: dict[str, dict[str, dict[str, object]]] = field(default_factory=dict)  # artifact -> method -> key -> value
    columns: dict[str, list[str]] = field(default_factory=dict)  # artifact -> metrics shown (optional)


def load_paper(path: str | os.PathLike | None) -> Paper | None:
    """The paper's numbers of an experiment YAML, read by `diffreg.experiments` (the one reader);
    only their shape is checked here, so `tabulate --paper` also takes a file of numbers alone."""
    if path is None:
        return None
    path = Path(path)
    name, rows, columns = paper_numbers(read_yaml(path), str(path))
    return Paper(name or path.stem, rows, columns)


def format_paper_value(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, dict) and "mean" in v:
        return fmt_mean_sd(float(v["mean"]), float(v["sd"]) if v.get("sd") is not None else float("nan"))
    if isinstance(v, (list, tuple)) and len(v) == 2:
        return fmt_mean_sd(float(v[0]), float(v[1]))
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return fmt(float(v))
    return str(v)


# ----------------------------------------------------------------------------- formatting

def fmt(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    a = abs(v)
    if a == 0 or a >= 0.01:
        return f"{v:.1f}" if a >= 100 else f"{v:.3f}"
    return f"{v:.2g}"


def fmt_mean_sd(mean: float, sd: float, sd_seeds: float = float("nan")) -> str:
    """'m ± sd over pairs', and '(± sd over seeds)' after it when several seeds ran."""
    if math.isnan(mean):
        return "–"
    text = fmt(mean) if math.isnan(sd) else f"{fmt(mean)} ± {fmt(sd)}"
    return text if math.isnan(sd_seeds) else f"{text} (± {fmt(sd_seeds)})"


@dataclass
class Cell:
    text: str
    paper: bool = False
    flag: str = ""          # a warning shown beside the text (the sanity guard), its words as tooltip


FLAG_NOTE = (f"⚠: the row's mean Dice gain over the initial alignment (paired, over the same pairs) is at most "
             f"{INITIAL_MARGIN:g}: it did not register better than leaving the images as they were.")


@dataclass
class DisplayTable:
    """One formatted table: a caption, headers and rows of cells (paper cells flagged)."""
    caption: str
    group: tuple[str, str, str]
    headers: list[Cell]
    rows: list[list[Cell]]


def display_tables(summary: pd.DataFrame, paper: Paper | None = None,
                   columns: list[str] | str | None = None) -> list[DisplayTable]:
    """Formatted tables, one per (experiment, artifact, dataset).

    columns: metric names to show (their per-label columns follow); None -> the paper YAML's
    ``columns`` for the artifact, else DEFAULT_COLUMNS; "all" -> every metric. Metrics with paper
    numbers are always shown, beside the paper's column.
    """
    tables = []
    for group, sub in summary.groupby(GROUP, sort=False):
        prow = paper.rows.get(group[1], {}) if paper else {}
        ours = set(summary_keys(sub))
        # a per-label paper number only beside a label we have (the knees' femur is not on a toy brain)
        paper_keys = [k for vals in prow.values() for k in vals if ":" not in k or k in ours]
        if columns == "all":
            wanted = None
        else:
            wanted = columns or (paper.columns.get(group[1]) if paper else None) or list(DEFAULT_COLUMNS)
        keys = [k for k in summary_keys(sub) if sub[f"{k}_mean"].notna().any()
                and (wanted is None or k.partition(":")[0] in wanted or k in paper_keys)]
        keys = _ordered_keys(list(dict.fromkeys(keys + paper_keys)))
        with_paper = set(paper_keys)
        headers = [Cell("Method"), Cell("n")]
        for k in keys:
            headers.append(Cell(column_title(k)))
            if k in with_paper:
                headers.append(Cell(f"{column_title(k)} (paper)", paper=True))
        show_threads = bool(sub["threads"].astype(str).str.len().gt(0).any())
        if show_threads:
            headers.append(Cell("Threads"))
        rows = []
        for _, r in sub.iterrows():
            gain = r.get("dice_gain_mean", float("nan"))
            flag = (f"mean Dice gain over the initial alignment {fmt(gain)} ≤ {INITIAL_MARGIN:g}"
                    if r.get("beats_initial") is False else "")
            seeds = int(r.get("n_seeds", 1) or 1)
            row = [Cell(r["method"], flag=flag), Cell(str(int(r["n"])) + (f" × {seeds} seeds" if seeds > 1 else ""))]
            for k in keys:
                row.append(Cell(fmt_mean_sd(r.get(f"{k}_mean", float("nan")), r.get(f"{k}_sd", float("nan")),
                                            r.get(f"{k}_sd_seeds", float("nan")) if seeds > 1 else float("nan"))))
                if k in with_paper:
                    row.append(Cell(format_paper_value(prow.get(r["method"], {}).get(k)), paper=True))
            if show_threads:
                row.append(Cell(r["threads"]))
            rows.append(row)
        # methods the paper reports that we did not run: their numbers, ours marked "not run"
        for method, vals in prow.items():
            if method in set(sub["method"]) or not with_paper.intersection(vals):
                continue
            row = [Cell(method), Cell("0")]
            for k in keys:
                row.append(Cell("not run"))
                if k in with_paper:
                    row.append(Cell(format_paper_value(vals.get(k)), paper=True))
            if show_threads:
                row.append(Cell(""))
            rows.append(row)
        caption = " / ".join(group)
        if with_paper:
            caption += f" — paper: {paper.name}"
        tables.append(DisplayTable(caption, tuple(group), headers, rows))
    return tables


def to_markdown(tables: list[DisplayTable]) -> str:
    out = []
    for t in tables:
        out.append(f"### {t.caption}\n")
        out.append("| " + " | ".join(c.text.replace("|", "\\|") for c in t.headers) + " |")
        out.append("|" + "|".join("---" for _ in t.headers) + "|")
        for row in t.rows:
            out.append("| " + " | ".join((c.text + (" ⚠" if c.flag else "")).replace("|", "\\|") for c in row) + " |")
        if _flagged([t]):
            out += ["", FLAG_NOTE]
        out.append("")
    out.append("mean ± sd over pairs (sample sd); Dice: mean over foreground labels; "
               "% det J ≤ 0 and SDlogJ: central differences; initial: before registration.")
    return "\n".join(out) + "\n"


def _flagged(tables: list[DisplayTable]) -> bool:
    return any(c.flag for t in tables for r in t.rows for c in r)


def _cell(tag: str, c: Cell) -> str:
    cls = ' class="paper"' if c.paper else ' class="flagged"' if c.flag else ""
    flag = f' <span class="flag" title="{html.escape(c.flag, quote=True)}">⚠</span>' if c.flag else ""
    return f"<{tag}{cls}>{html.escape(c.text)}{flag}</{tag}>"


def to_html(tables: list[DisplayTable], more: list[DisplayTable] | None = None) -> str:
    """An HTML fragment (no <html> wrapper): one <table class="metrics"> per group; ``more``
    (e.g. every metric) goes into a collapsed <details> block after them."""
    out = _html_tables(tables)
    if _flagged(tables):
        out.append(f'<p class="note flag-note">{html.escape(FLAG_NOTE)}</p>')
    if more:
        out.append("<details><summary>All metrics</summary>")
        out += _html_tables(more)
        out.append("</details>")
    out.append('<p class="note">mean ± sd over pairs (sample sd); Dice: mean over foreground labels; '
               "% det J ≤ 0 and SDlogJ: central differences; initial: before registration; "
               "(paper): the number the paper reports.</p>")
    return "\n".join(out) + "\n"


def _html_tables(tables: list[DisplayTable]) -> list[str]:
    out = []
    for t in tables:
        out.append('<table class="metrics">')
        out.append(f"<caption>{html.escape(t.caption)}</caption>")
        out.append("<thead><tr>" + "".join(_cell("th", c) for c in t.headers) + "</tr></thead>")
        out.append("<tbody>")
        for row in t.rows:
            out.append("<tr>" + "".join(_cell("td", c) for c in row) + "</tr>")
        out.append("</tbody></table>")
    return out


def numeric_table(summary: pd.DataFrame, paper: Paper | None = None) -> pd.DataFrame:
    """table.csv: the summary with paper numbers (as given) in ``paper_<key>`` columns."""
    out = summary.copy()
    if paper:
        keys = sorted({k for art in paper.rows.values() for vals in art.values() for k in vals})
        for k in keys:
            vals = [paper.rows.get(a, {}).get(m, {}).get(k) for a, m in zip(out["artifact"], out["method"])]
            # numbers stay numbers; anything else (a "mean ± sd" string, a pair) as displayed
            out[f"paper_{k}"] = [v if isinstance(v, (int, float)) and not isinstance(v, bool)
                                 else ("" if v is None else format_paper_value(v)) for v in vals]
    return out


def merge(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True)


__all__ = ["summarize", "load_paper", "display_tables", "to_markdown", "to_html", "numeric_table",
           "merge", "fmt", "fmt_mean_sd", "column_title", "Paper", "INITIAL"]

"""A paper's tables and figures from our runs: the `artifacts:` of an experiment YAML, filled in.

Inputs: the experiment YAML (read by `diffreg.experiments`: artifact kinds, titles, the paper's
numbers, claims), the plan's ``uses.csv`` (one row per (experiment, artifact, row): the
registration label that produced it, or why none did), long metrics CSVs whose ``method`` column
is the label, registration folders and images (qualitative figures) and the folders of the
computed figures (``diffreg figure``, named by figure id; ``figures.csv`` of the plan maps an
artifact to its figure). Output: one file set per artifact, ``claims.json`` and ``index.json``
(read by ``diffreg report``).

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

import html
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from diffreg import spatial
from diffreg.deps import is_dependency
from diffreg.errors import InputError
from diffreg.experiments import artifact_claims, load_experiment as load
from diffreg.io import atomic_path, read_field, read_image
from diffreg.metrics_table import read_csv_text, read_metrics
from diffreg.registration_outputs import (ImageIndex, find_registrations, fixed_subject, load_pair,
                                          read_image_datasets)
from diffreg.replicates import split_seed
from diffreg.report import stats, tables
from diffreg.report.claims import (INITIAL, LOWER_IS_BETTER, claim_table, file_values, judge, metric_values,
                                   names_rows)
from diffreg.report.row_settings import settings_notes, training_settings

USES_COLUMNS = ["experiment", "artifact", "row", "label", "status", "note", "param", "value"]
RAN = "run"
STATUS_TEXT = {"needs_weights": "needs weights", "not_implemented": "not implemented", "skipped": "skipped",
               "failed": "failed"}
NO_METRICS = "no metrics"      # a row marked as run whose run is absent from the metrics
MEAN_LABELS = ("mean", "all")


# ----------------------------------------------------------------------------- inputs

@dataclass
class Experiment:
    name: str                           # the paper's name, as the report shows it
    key: str                            # the experiment's name in the plan (the YAML's stem)
    artifacts: dict[str, dict]          # YAML order
    path: Path
    paper: tables.Paper
    tasks: dict[str, dict] = field(default_factory=dict)


def load_experiment(path: str | os.PathLike) -> Experiment:
    exp = load(path)                    # the one reader: validates the whole file
    paper = tables.Paper(exp.title, exp.paper_rows(), exp.paper_columns())
    return Experiment(exp.title, exp.name, exp.artifacts, Path(path), paper, exp.tasks)


def read_uses(path: str | os.PathLike, experiment: str | None = None) -> pd.DataFrame:
    """uses.csv of the plan, the rows of `experiment` only when given."""
    df = read_csv_text(path, "uses")
    missing = [c for c in USES_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)} (need {','.join(USES_COLUMNS)})")
    df = df[USES_COLUMNS].apply(lambda c: c.str.strip())
    bad = df[(df["status"] == RAN) & (df["label"] == "")]
    if len(bad):
        raise InputError(f"{path}: row {bad.index[0] + 2}: status 'run' without a label")
    if experiment is not None:
        df = df[df["experiment"] == experiment].reset_index(drop=True)
    return df


def status_text(status: str, note: str = "") -> str:
    text = STATUS_TEXT.get(status, status.replace("_", " "))
    # "skipped" alone says nothing: the reason is short ("needs 3D data") and belongs in the cell
    return f"{text}: {note}" if status == "skipped" and note else text


def row_metrics(metrics: pd.DataFrame, uses: pd.DataFrame, artifact: str, experiment: str) -> pd.DataFrame:
    """The metrics of this artifact's rows that ran (``method`` == the row's registration label),
    method renamed label -> row, artifact set, ``seed`` the replicate of --seeds. A label names one
    registration set (a trained network on one kind of test pair), so no other filter is needed."""
    frames = []
    for _, u in uses[uses["status"] == RAN].iterrows():
        sel = metrics[metrics["method"] == u["label"]]
        if len(sel):
            frames.append(sel.assign(method=u["row"], artifact=artifact, experiment=experiment,
                                     seed=split_seed(u["label"])[1]))
    if not frames:
        return pd.DataFrame(columns=metrics.columns if len(metrics.columns) else None)
    return pd.concat(frames, ignore_index=True)


def pair_means(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per (method, pair) value of a metric at its mean/whole label."""
    d = df[(df["metric"] == metric) & df["label"].isin(MEAN_LABELS)]
    return d.groupby(["method", "pair"], sort=False)["value"].mean().reset_index()


def row_stats(df: pd.DataFrame, metric: str) -> dict[str, tuple[float, float, int]]:
    """method -> (mean, sample sd, n pairs) over pairs, NaN skipped."""
    out = {}
    for m, v in pair_means(df, metric).groupby("method", sort=False)["value"]:
        v = v.dropna()
        if len(v):
            out[m] = (float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else float("nan"), int(len(v)))
    return out


# ----------------------------------------------------------------------------- tables

def _row_order(spec: dict, uses: pd.DataFrame, paper_rows: dict) -> list[str]:
    names = [r["name"] if isinstance(r, dict) else str(r) for r in spec.get("runs") or []]
    return list(dict.fromkeys([*names, *paper_rows, *uses["row"]]))


def _cell_key(header: str, keys: list[str]) -> str | None:
    for k in keys:
        if header in (tables.column_title(k), f"{tables.column_title(k)} (paper)"):
            return k
    return None


def _empty_table(caption: str, keys: list[str]) -> tables.DisplayTable:
    headers = [tables.Cell("Method"), tables.Cell("n")]
    for k in keys:
        headers += [tables.Cell(tables.column_title(k)), tables.Cell(f"{tables.column_title(k)} (paper)", paper=True)]
    return tables.DisplayTable(caption, ("", "", ""), headers, [])


def artifact_tables(key: str, spec: dict, exp: Experiment, uses: pd.DataFrame,
                    df: pd.DataFrame) -> tuple[list[tables.DisplayTable], pd.DataFrame]:
    """Display tables and the numeric CSV of one table artifact, in the YAML's row order, with the
    status of rows that did not run in our cells and the paper's numbers beside them."""
    paper_rows = exp.paper.rows.get(key, {})
    paper = tables.Paper(exp.name, {key: paper_rows}, {key: exp.paper.columns[key]} if key in exp.paper.columns else {})
    order = _row_order(spec, uses, paper_rows)
    status = {}
    for _, u in uses.iterrows():
        ran = u["status"] == RAN and u["row"] in set(df["method"]) if len(df) else False
        status[u["row"]] = None if ran else (NO_METRICS if u["status"] == RAN else status_text(u["status"], u["note"]))
    if len(df):
        summary = tables.summarize(df)
        shown = tables.display_tables(summary, paper)
        numeric = tables.numeric_table(summary, paper)
    else:
        keys = list(dict.fromkeys(k for vals in paper_rows.values() for k in vals))
        shown = [_empty_table(f"{exp.name} / {key} — nothing ran", keys)]
        # the paper's rows that were not planned read "not run", as display_tables writes them
        shown[0].rows = [[tables.Cell(r), tables.Cell("0")] + [tables.Cell("not run", paper=h.paper)
                                                               for h in shown[0].headers[2:]]
                         for r in paper_rows if r not in status]
        for r in shown[0].rows:
            for h, c in zip(shown[0].headers[2:], r[2:]):
                if h.paper:
                    c.text = tables.format_paper_value(paper_rows[r[0].text].get(_cell_key(h.text, keys)))
        numeric = pd.DataFrame(columns=["experiment", "artifact", "dataset", "method", "n"])
    paper_keys = list(dict.fromkeys(k for vals in paper_rows.values() for k in vals))
    for t in shown:
        present = {r[0].text for r in t.rows}
        for row, text in status.items():
            if text is not None and row not in present:
                t.rows.append([tables.Cell(row), tables.Cell("0")] + [tables.Cell("not run", paper=h.paper)
                                                                     for h in t.headers[2:]])
        for r in t.rows:
            text = status.get(r[0].text)
            if text is None:
                continue
            said = False   # the status once, in the row's first cell of ours; dashes after it
            for h, c in zip(t.headers[2:], r[2:]):
                if h.paper:
                    k = _cell_key(h.text, paper_keys)
                    c.text = tables.format_paper_value(paper_rows.get(r[0].text, {}).get(k)) if k else "–"
                else:
                    c.text = "" if h.text == "Threads" else ("–" if said else text)
                    said = said or h.text != "Threads"
        rank = {m: i for i, m in enumerate(order)}
        t.rows.sort(key=lambda r: -1 if r[0].text == tables.INITIAL else rank.get(r[0].text, len(rank)))
    # CSV: our numbers, the paper's, and each row's registration label and status
    first = uses.drop_duplicates("row")      # replicate 0 names the row's registrations
    labels = dict(zip(first["row"], first["label"]))
    numeric = numeric.assign(label=[labels.get(m, "") for m in numeric["method"]],
                             status=[RAN if m in labels else "" for m in numeric["method"]])
    extra = []
    for row in order:
        text = status.get(row)
        if text is None and (row in set(numeric["method"]) or row not in paper_rows):
            continue
        u = uses[uses["row"] == row]
        datasets = numeric["dataset"].dropna().unique() if "dataset" in numeric else []
        rec = {"experiment": exp.name, "artifact": key, "dataset": datasets[0] if len(datasets) == 1 else "",
               "method": row, "n": 0,
               "label": labels.get(row, ""),
               "status": "not_planned" if u.empty else "no_metrics" if text == NO_METRICS else u["status"].iloc[0]}
        rec.update({f"paper_{k}": v for k, v in paper_rows.get(row, {}).items()})
        extra.append(rec)
    if extra:
        numeric = pd.concat([numeric, pd.DataFrame(extra)], ignore_index=True)
    rank = {m: i for i, m in enumerate(order)}
    numeric = numeric.iloc[sorted(range(len(numeric)), key=lambda i: (
        -1 if numeric["method"].iloc[i] == tables.INITIAL else rank.get(numeric["method"].iloc[i], len(rank))))]
    return shown, numeric.reset_index(drop=True)


# ----------------------------------------------------------------------------- sweeps

def _num(v: str):
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
        recs.append({"value": _num(u["value"]), f"{metric}_mean": mean, f"{metric}_sd": sd, "n": n, "status": st})
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


# ----------------------------------------------------------------------------- qualitative figures

def _split_row(row: str) -> tuple[str, str | None]:
    """"lncc (be_nbe)" -> ("lncc", "be_nbe"): a figure drawn from several tables names the table's
    test set after the row."""
    if row.endswith(")") and " (" in row:
        base, _, rest = row.rpartition(" (")
        return base, rest[:-1]
    return row, None


def qualitative_rows(spec: dict, uses_all: pd.DataFrame, key: str, regs: list, images, df_all: pd.DataFrame):
    """QualitativeRow per listed run that ran, on the first pair (sorted) that all runs of a group
    registered (else the pair most of them registered). Groups: one per test set named after the
    figure's own rows ("lncc (be_be)"), else one per `from:` artifact when the figure has no rows."""
    from diffreg.report.figures import QualitativeRow  # deferred: pulls in matplotlib
    wanted = [str(r) for r in spec.get("runs") or []]
    own = uses_all[uses_all["artifact"] == key]
    if len(own):
        groups = {}
        for _, u in own.iterrows():
            groups.setdefault(_split_row(u["row"])[1], []).append(u)
        groups = [(g, pd.DataFrame(rs)) for g, rs in groups.items()]
    else:
        sources = spec.get("from") or []
        sources = [sources] if isinstance(sources, str) else list(sources)
        groups = [(s if len(sources) > 1 else None, uses_all[uses_all["artifact"] == s]) for s in sources]
    rank = {r: i for i, r in enumerate(wanted)}
    rows, pairs, used = [], [], []
    for group, u in groups:
        listed = np.array([not wanted or _split_row(r)[0] in rank or r in rank for r in u["row"]], bool)
        u = u[(u["status"] == RAN).to_numpy() & listed]
        u = u.drop_duplicates("row")
        u = u.iloc[sorted(range(len(u)), key=lambda i: rank.get(_split_row(u["row"].iloc[i])[0], len(rank)))]
        by_label = {r: [g for g in regs if g.method == r] for r in u["label"]}
        u = u[[bool(by_label[r]) for r in u["label"]]]
        if u.empty:
            continue
        counts: dict[str, int] = {}
        for r in dict.fromkeys(u["label"]):
            for p in {g.pair for g in by_label[r]}:
                counts[p] = counts.get(p, 0) + 1
        pair = sorted(counts, key=lambda p: (-counts[p], p))[0]
        pairs.append(pair if group is None else f"{pair} ({group})")
        for _, x in u.iterrows():
            reg = next((g for g in by_label[x["label"]] if g.pair == pair), None)
            if reg is None:
                continue
            d = df_all[(df_all["method"] == x["label"]) & (df_all["pair"] == pair) & (df_all["metric"] == "dice")
                       & (df_all["label"] == "mean")]
            dice = float(d["value"].mean()) if len(d) else None
            label = x["row"] if len(own) or group is None else f"{x['row']} ({group})"
            rows.append(QualitativeRow(label, load_pair(reg, images.only(dataset_of(df_all, x["label"]))), dice))
            used.append(reg)
    return rows, pairs, used


def dataset_of(metrics: pd.DataFrame, label: str) -> str | None:
    """The dataset a registration set ran on, from its metrics (None when it has none)."""
    d = metrics.loc[metrics["method"] == label, "dataset"] if "dataset" in metrics else []
    return str(d.iloc[0]) if len(d) else None


def qualitative_view(show: str, rows: list, regs: list, title: str, exp: Experiment, spec: dict,
                     images) -> tuple[bytes | None, str]:
    """The PNG of a qualitative figure's view (``show`` in the YAML) and the caption's words (or
    None and why not): the registration panels, the trajectory, or the generated images."""
    # deferred: pulls in matplotlib
    from diffreg.report import figures
    from diffreg.report.figures.trajectory import generated_figure, trajectory_figure
    if show == "registration":
        return figures.qualitative_figure(rows, title), "the grid shows x + u(x), the backward map into the moving image"
    if show == "generated":
        made = [(r.method, r.data.moving, r.data.fixed, r.data.warped(), read_image(g.path / "generated.nii.gz")[0])
                for r, g in zip(rows, regs) if "generated" in (g.run.get("images") or [])]
        if not made:
            return None, "no listed run wrote a generated image (a row with generate: true)"
        return generated_figure(made, title), "generated: the moving image forward-diffused and denoised back " \
                                              "conditioned on (moving, fixed)"
    out, note = trajectory_rows(rows, regs, _task_trajectory(exp, spec), images)
    if not out:
        return None, "no listed run wrote a trajectory (trajectory settings of its method)"
    return trajectory_figure(out, title), "each column warps the moving image by the field at that time" + note


def trajectory_rows(rows: list, regs: list, traj: dict | None, images) -> tuple[list, str]:
    """TrajectoryRow per run that wrote a trajectory (its moving image warped by the field at each
    time strictly between 0 and 1), then the true frames of the fixed subject where the task has
    them; and a note when they are missing."""
    from diffreg.report.figures.trajectory import TrajectoryRow  # deferred: pulls in matplotlib
    out = []
    for r, g in zip(rows, regs):
        times = [float(t) for t in (g.run.get("trajectory_times") or [])]
        frames = {t: spatial.warp_numpy(r.data.moving, read_field(g.path / f"disp_step{k}.nii.gz")[0], mode="linear")
                  for k, t in enumerate(times) if 0 < t < 1}
        if frames:
            out.append(TrajectoryRow(r.method, r.data.moving, r.data.fixed, frames))
    note = ""
    if out and traj:
        subject = fixed_subject(regs[0])
        try:
            truth = {float(t): read_image(images.find(f"{subject}_{m}.nii.gz"))[0]
                     for m, t in zip(traj["references"], traj["times"])}
            out.append(TrajectoryRow("true frames", rows[0].data.moving, rows[0].data.fixed, truth))
        except InputError as err:
            note = f"; true frames not found ({err})"
    return out, note


def _task_label_names(exp: Experiment, spec: dict, df: pd.DataFrame) -> dict[str, str]:
    """{'1': 'RV', ...} from the `labels` of the artifact's task that ran (its dataset is in the
    metrics), {} when it names none: the main dataset's label names belong to the main dataset."""
    ran = set(df["dataset"]) if len(df) and "dataset" in df else set()
    for name in (spec.get("tasks") or {}).values():
        task = exp.tasks.get(name) or {}
        if task.get("labels") and task.get("dataset") in ran:
            return {str(k): v for k, v in enumerate(task["labels"], start=1)}
    return {}


def _task_labels(exp: Experiment, spec: dict, df: pd.DataFrame) -> str:
    """'1 RV, 2 Myo, ...' (see _task_label_names)."""
    return ", ".join(f"{k} {v}" for k, v in _task_label_names(exp, spec, df).items())


def _task_trajectory(exp: Experiment, spec: dict) -> dict | None:
    """The reference frames of the figure's task (the real one first), or None."""
    names = [v for v in (spec.get("tasks") or {}).values() if v in exp.tasks]
    return next((exp.tasks[n]["trajectory"] for n in names if exp.tasks[n].get("trajectory")), None)


# ----------------------------------------------------------------------------- claims

def _fmt(v: float) -> str:
    return tables.fmt(float(v))


def claim_values(check: dict, kind: str, df: pd.DataFrame, uses: pd.DataFrame,
                 folder: Path | None) -> tuple[pd.DataFrame | None, str]:
    """The per-pair values a claim is judged on (claims.py), or None and why there are none."""
    if check.get("file"):
        path = folder / str(check["file"]) if folder else None
        values, why = file_values(check, path)
        return values, why + ("" if folder else " (no figure folder: give --figures)")
    metric = check.get("metric", "dice")
    if kind == "sweep":   # a swept row is named by its value: the check speaks of values
        return metric_values(df, metric, {r: str(_num(v)) for r, v in zip(uses["row"], uses["value"])}), ""
    return metric_values(df, metric, initial=INITIAL in names_rows(check)), ""


def _judged_claim(spec_claim: dict, stem: str, kind: str | None, df: pd.DataFrame, uses: pd.DataFrame,
                  folder: Path | None, files: dict) -> dict:
    """One claim judged on its values; its values and statistics go to ``<stem>.values.csv`` and
    ``<stem>.claim.csv`` in ``files`` (so that `diffreg report` can judge it again)."""
    claim = {"text": str(spec_claim.get("text", ""))}
    check = spec_claim.get("check") or {}
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


# ----------------------------------------------------------------------------- the whole experiment

@dataclass
class Inputs:
    experiment: Path
    uses: Path
    name: str | None = None             # the experiment's name in the plan (default: the YAML's stem)
    metrics: list[Path] = field(default_factory=list)
    registrations: list[Path] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)    # computed figures' folders, named by figure id
    figures_csv: Path | None = None     # the plan's figures.csv
    label_names: dict[int, str] = field(default_factory=dict)
    images_datasets: Path | None = None  # which dataset each images subfolder holds (ImageIndex)


def read_figures_csv(path: Path | None) -> pd.DataFrame:
    cols = ["figure", "experiment", "artifact", "function"]
    if path is None:
        return pd.DataFrame(columns=cols)
    df = read_csv_text(path, "figures")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    return df.apply(lambda c: c.str.strip())


def figure_folder(experiment: str, artifact: str, uses: pd.DataFrame, plan_figures: pd.DataFrame,
                  folders: list[Path]) -> tuple[str | None, Path | None]:
    """(figure id, its folder among `folders`) of a computed figure artifact: the id from the
    artifact's uses row, else from figures.csv (a figure shared by two artifacts is listed once)."""
    ids = [x for x in uses.loc[uses["status"] == RAN, "label"] if x]
    if not ids:
        sel = plan_figures[(plan_figures["experiment"] == experiment) & (plan_figures["artifact"] == artifact)]
        ids = list(sel["figure"])
    fid = ids[0] if ids else None
    found = next((f for f in folders if f.is_dir() and f.name == fid), None) if fid else None
    return fid, found


def _figure_files(check: dict, folder: Path | None) -> dict[str, Path]:
    """The PNG and CSV a computed figure made: those named by its claim check, else the first."""
    if folder is None:
        return {}
    out = {}
    stem = Path(str(check["file"])).stem if check.get("file") else None
    for ext in ("png", "csv"):
        if stem is not None:
            cands = [folder / f"{stem}.{ext}"]
        else:
            cands = sorted(folder.glob(f"*.{ext}"))
        found = next((c for c in cands if c.is_file()), None)
        if found is not None:
            out[ext] = found
    return out


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _setting_text(v) -> str:
    if is_dependency(v):
        kind, ref = next(iter(v.items()))
        return f"<{kind} {ref}>"
    return str(v)


def _notes(uses: pd.DataFrame) -> list[str]:
    return [f"{u['row']}: {u['note'] or status_text(u['status'])}" for _, u in uses.iterrows() if u["status"] != RAN]


def build(inp: Inputs, out: str | os.PathLike) -> dict:
    """Write every artifact's files, claims.json and index.json into ``out``; return the index."""
    out = Path(out)
    exp = load_experiment(inp.experiment)
    name = inp.name or exp.key
    uses = read_uses(inp.uses, name)
    unknown = sorted(set(uses["artifact"]) - set(exp.artifacts))
    if unknown:
        raise InputError(f"{inp.uses}: artifact(s) {', '.join(unknown)} of experiment {name} not in {inp.experiment}")
    plan_figures = read_figures_csv(inp.figures_csv)
    frames = [read_metrics(p) for p in inp.metrics]
    metrics = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["experiment", "artifact", "method", "dataset", "pair", "label", "metric", "value"])
    # a registration set evaluated for several experiments: this experiment's evaluation
    if len(metrics) and (metrics["experiment"] == name).any():
        metrics = metrics[metrics["experiment"] == name].reset_index(drop=True)
    regs = find_registrations(inp.registrations) if inp.registrations else []
    images = ImageIndex(inp.images, read_image_datasets(inp.images_datasets)) if inp.images else None
    labels = ", ".join(f"{k} {v}" for k, v in sorted(inp.label_names.items()) if k != 0)
    run_settings = training_settings(Path(inp.uses).parent)

    # build everything in memory first: a failure leaves no partial artifact set
    files: dict[str, bytes | str | Path] = {}
    sections, claims = [], []
    for key, spec in exp.artifacts.items():
        u = uses[uses["artifact"] == key]
        df = row_metrics(metrics, u, key, exp.name)
        check = next(iter(artifact_claims(spec)), {}).get("check") or {}   # the first claim picks the metric shown
        sec = {"artifact": key, "kind": spec["kind"], "title": spec.get("title", key), "html": None,
               "png": None, "caption": "", "claim": None}
        values, folder, kind = None, None, None   # what the claim is judged on
        if spec["kind"] == "table":
            shown, numeric = artifact_tables(key, spec, exp, u, df)
            files[f"{key}.csv"] = numeric.to_csv(index=False, na_rep="nan", float_format="%.10g")
            files[f"{key}.md"] = tables.to_markdown(shown)
            notes = _notes(u) + settings_notes(u[u["status"] == RAN], run_settings)
            files[f"{key}.html"] = tables.to_html(shown) + "".join(
                f'<p class="note">{html.escape(n)}</p>\n' for n in notes)
            sec["html"] = f"{key}.html"
            if spec.get("plot") == "per_label":   # the paper's box plots per structure (Fig. 10)
                # deferred: pulls in matplotlib
                from diffreg.report.figures.per_label import dice_per_label_boxplot
                png = dice_per_label_boxplot(df, spec.get("title", key), _task_label_names(exp, spec, df),
                                             _row_order(spec, u, {}), check.get("metric", "dice"))
                if png is not None:
                    files[f"{key}.png"] = png
                    sec["png"] = f"{key}.png"
            ran = sorted(set(df["method"])) if len(df) else []
            names = _task_labels(exp, spec, df) or labels
            sec["caption"] = (f"{len(ran)} of {len(u)} planned rows ran" if len(u) else "no rows planned") + \
                (f"; labels: {names}" if names else "") + \
                ("" if ran else ". Nothing ran for this table: only the paper's numbers are shown")
            kind = "table"
        elif spec.get("sweep"):
            param = str(spec["sweep"].get("param", "value"))
            metric = check.get("metric", "dice")
            st = sweep_table(u, df, metric)
            files[f"{key}.csv"] = st.to_csv(index=False, na_rep="nan", float_format="%.10g")
            png = sweep_figure(st, param, spec.get("title", key), metric)
            best = sweep_best(st, metric)
            fixed = ", ".join(f"{k} {v}" for k, v in (spec["sweep"].get("fixed") or {}).items())
            if png is not None:
                files[f"{key}.png"] = png
                sec["png"] = f"{key}.png"
                sec["caption"] = (f"mean {metric} ± SD over pairs vs {param} ({fixed}); best {param} = {best[0]} "
                                  f"({_fmt(best[1])}); {int((st['n'] > 0).sum())} of {len(st)} values ran")
            else:
                sec["caption"] = f"Nothing ran for this sweep over {param} ({len(st)} values planned)"
            if spec.get("paper"):
                sec["caption"] += f". Paper: {spec['paper']}"
            kind = "sweep"
        elif spec.get("function"):
            fid, folder = figure_folder(name, key, u, plan_figures, inp.figures)
            found = _figure_files(check, folder)
            for ext, src in found.items():
                files[f"{key}.{ext}"] = src
            sec["png"] = f"{key}.png" if "png" in found else None
            settings = ", ".join(f"{k} {_setting_text(v)}" for k, v in (spec.get("settings") or {}).items())
            fn = spec["function"]
            if "png" in found:
                sec["caption"] = f"`{fn}`" + (f" ({settings})" if settings else "")
            elif len(u) and not (u["status"] == RAN).any():
                sec["caption"] = f"Not made: {status_text(u['status'].iloc[0], u['note'].iloc[0])}" + \
                    (f" ({u['note'].iloc[0]})" if u["status"].iloc[0] != "skipped" and u["note"].iloc[0] else "")
            elif folder is None:
                sec["caption"] = (f"Not made: no folder {fid} among --figures" if fid
                                  else "Not made: the plan has no figure for this artifact (give --figures-csv)")
            else:
                sec["caption"] = f"Not made: no PNG in {folder}"
            kind = "file"
        elif spec.get("runs") and spec.get("from"):
            rows, pairs, used = (qualitative_rows(spec, uses, key, regs, images, metrics)
                                 if regs and images is not None else ([], [], []))
            show = spec.get("show", "registration")
            png, what = None, ""
            if rows:
                title = f"{spec.get('title', key)}\npair {'; '.join(pairs)}"
                png, what = qualitative_view(show, rows, used, title, exp, spec,
                                             images.only(dataset_of(metrics, used[0].method)))
            if png is not None:
                files[f"{key}.png"] = png
                sec["png"] = f"{key}.png"
                slice_note = "mid axial slice; " if rows[0].data.fixed.ndim == 3 else ""
                sec["caption"] = (f"{slice_note}pair {'; '.join(pairs)}; rows: {len(rows)} of {len(spec['runs'])} "
                                  f"listed runs; {what}")
            elif rows:
                sec["caption"] = f"Nothing to show: {what}"
            else:
                why = "" if regs and images is not None else " (give --registrations and --images-dir)"
                sec["caption"] = f"Nothing to show: no listed run has a registration{why}"
            # a claim about the figure's rows is judged on their metrics, as a table's is
            kind = "qualitative"
        else:
            sec["caption"] = "Nothing to show: this artifact has no runs"
        sec["claims"] = []
        for i, spec_claim in enumerate(artifact_claims(spec)):
            claim = _judged_claim(spec_claim, f"{key}-{i + 1}" if i else key, kind, df, u, folder, files)
            sec["claims"].append(claim)
            claims.append({"artifact": key, **claim})
        sec["claim"] = sec["claims"][0] if sec["claims"] else None
        # regenerated: something of ours ran (a table row with metrics, a drawn figure), not only the paper's numbers
        sec["regenerated"] = bool(sec["png"]) or (spec["kind"] == "table" and len(df) > 0)
        sec["not_implemented"] = int((u["status"] == "not_implemented").sum()) if len(u) else 0
        sections.append(sec)

    index = {"experiment": exp.name, "name": name, "sections": sections}
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        if isinstance(data, Path):
            with atomic_path(out / name) as tmp:
                shutil.copyfile(data, tmp)
        elif isinstance(data, bytes):
            _write_bytes(out / name, data)
        else:
            _write_text(out / name, data)
    _write_text(out / "claims.json", json.dumps(claims, indent=2) + "\n")
    _write_text(out / "index.json", json.dumps(index, indent=2) + "\n")
    return index


# ----------------------------------------------------------------------------- for the report

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


def _link(href: str | None, name: str) -> str:
    return f'<a href="{html.escape(href, quote=True)}">{html.escape(name)}</a>' if href else html.escape(name)


def stats_html(claim: dict, href: str | None) -> str | None:
    """The numbers behind a verdict: each compared row's mean and interval, its paired difference
    to the claimed row, the interval of that difference and the test's p; linked to their CSVs."""
    lines = claim.get("lines")
    if not lines:
        return None
    out = ['<table class="metrics stats">',
           "<caption>Statistics of the claim — from " + " and ".join(
               _link(f"{href}/{claim[k]}" if href else None, claim[k]) for k in ("values", "stats") if claim.get(k))
           + "</caption>",
           f"<thead><tr><th>Row</th><th>n</th><th>mean [{stats.LEVEL:.0%} CI]</th>"
           f"<th>claimed − row [{stats.LEVEL:.0%} CI]</th><th>n paired</th><th>p</th></tr></thead><tbody>"]
    f = stats.fmt
    for i, r in enumerate(lines):
        first = i == 0 or r["row"] == "initial" or not r.get("n_paired")
        diff = "" if first else f"{f(r['diff'])} [{f(r['diff_lo'])}, {f(r['diff_hi'])}]"
        out.append(f"<tr><td>{html.escape(str(r['row']))}</td><td>{r['n']}</td>"
                   f"<td>{f(r['mean'])} [{f(r['ci_lo'])}, {f(r['ci_hi'])}]</td><td>{diff}</td>"
                   f"<td>{'' if first else r['n_paired']}</td><td>{'' if first else stats.fmt_p(r['p'])}</td></tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def report_sections(folder: str | os.PathLike, href: str | None = None) -> dict:
    """One experiment folder as the report shows it: name and sections with the table HTML and
    the PNG (base64) read in, the claim judged again and as one line; ``href``: the folder as the
    report links to it (the CSVs each number comes from)."""
    import base64
    folder = Path(folder)
    path = folder / "index.json"
    if not path.is_file():
        raise InputError(f"{path}: file not found (run `diffreg experiment-artifacts` first)")
    try:
        index = json.loads(path.read_text())
        sections = index["sections"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not an experiment index ({exc})") from None
    out = []
    for s in sections:
        table = (folder / s["html"]).read_text(encoding="utf-8") if s.get("html") and (folder / s["html"]).is_file() else None
        png = base64.b64encode((folder / s["png"]).read_bytes()).decode("ascii") \
            if s.get("png") and (folder / s["png"]).is_file() else None
        stored = s.get("claims") if s.get("claims") is not None else ([s["claim"]] if s.get("claim") else [])
        judged = [rejudge(c, folder) for c in stored]
        csv = f"{s.get('artifact', '')}.csv"
        sources = [_link(f"{href}/{csv}" if href else None, csv)] if (folder / csv).is_file() else []
        out.append({"artifact": s.get("artifact", ""), "title": s.get("title") or s.get("artifact", ""),
                    "table_html": table, "png_b64": png, "caption": s.get("caption", ""),
                    "regenerated": bool(s.get("regenerated", table or png)),
                    "not_implemented": int(s.get("not_implemented", 0)),
                    "claims": [{"line": claim_line(c), "holds": c.get("holds"), "verdict": c.get("verdict"),
                                "stats_html": stats_html(c, href)} for c in judged],
                    "sources_html": " · ".join(sources)})
    return {"name": str(index.get("experiment", folder.name)), "key": str(index.get("name", folder.name)),
            "sections": out}


__all__ = ["Inputs", "build", "load_experiment", "read_uses", "row_metrics", "artifact_tables", "sweep_table",
           "sweep_best", "claim_values", "claim_line", "report_sections",
           "status_text"]

"""An experiment as the report reads it: its YAML (Experiment), the plan's ``uses.csv`` (one row
per (experiment, artifact, row): the registration label that produced it, or why none did), and
each row's metrics (the long CSV's ``method`` column is the label): per-pair means and the
mean, sd and n over pairs."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from diffreg import experiments
from diffreg.errors import InputError
from diffreg.experiment_model import Artifact, Task
from diffreg.metrics_table import read_csv_text
from diffreg.replicates import split_seed
from diffreg.report import tables

USES_COLUMNS = ["experiment", "artifact", "row", "label", "status", "note", "param", "value"]
RAN = "run"
STATUS_TEXT = {"needs_weights": "needs weights", "not_implemented": "not implemented", "skipped": "skipped",
               "failed": "failed"}
NO_METRICS = "no metrics"      # a row marked as run whose run is absent from the metrics
MEAN_LABELS = ("mean", "all")


@dataclass
class Experiment:
    name: str                           # the paper's name, as the report shows it
    key: str                            # the experiment's name in the plan (the YAML's stem)
    artifacts: dict[str, Artifact]      # YAML order
    path: Path
    paper: tables.Paper
    tasks: dict[str, Task] = field(default_factory=dict)


def load_experiment(path: str | os.PathLike) -> Experiment:
    exp = experiments.load_experiment(path)   # the one reader: validates the whole file
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

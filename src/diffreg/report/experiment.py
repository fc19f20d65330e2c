"""A paper's tables and figures from our runs: the `artifacts:` of an experiment YAML, filled in.

Inputs: the experiment YAML (read by `diffreg.experiments`: artifact kinds, titles, the paper's
numbers, claims), the plan's ``uses.csv`` (one row per (experiment, artifact, row): the
registration label that produced it, or why none did), long metrics CSVs whose ``method`` column
is the label, registration folders and images (qualitative figures) and the folders of the
computed figures (``diffreg figure``, named by figure id; ``figures.csv`` of the plan maps an
artifact to its figure). Output: one file set per artifact, ``claims.json`` and ``index.json``
(read by ``diffreg report``).

Claims are judged in claim_checks.py; the other parts of an artifact live beside this module
(experiment_rows, artifact_tables, sweeps, qualitative).
"""
from __future__ import annotations

import html
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from diffreg.deps import is_dependency
from diffreg.errors import InputError
from diffreg.experiment_model import Artifact
from diffreg.io import atomic_path
from diffreg.metrics_table import read_csv_text, read_metrics
from diffreg.registration_outputs import ImageIndex, find_registrations, read_image_datasets
from diffreg.report import tables
from diffreg.report.artifact_tables import artifact_tables, row_order
from diffreg.report.claim_checks import judged_claim
from diffreg.report.experiment_rows import RAN, Experiment, load_experiment, read_uses, row_metrics, status_text
from diffreg.report.qualitative import dataset_of, qualitative_rows, qualitative_view
from diffreg.report.row_settings import settings_notes, training_settings
from diffreg.report.sweeps import sweep_best, sweep_figure, sweep_table

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


def _task_label_names(exp: Experiment, spec: Artifact, df: pd.DataFrame) -> dict[str, str]:
    """{'1': 'RV', ...} from the `labels` of the artifact's task that ran (its dataset is in the
    metrics), {} when it names none: the main dataset's label names belong to the main dataset."""
    ran = set(df["dataset"]) if len(df) and "dataset" in df else set()
    for name in spec.tasks.values():
        task = exp.tasks.get(name)
        if task is not None and task.labels and task.dataset in ran:
            return {str(k): v for k, v in enumerate(task.labels, start=1)}
    return {}


def _task_labels(exp: Experiment, spec: Artifact, df: pd.DataFrame) -> str:
    """'1 RV, 2 Myo, ...' (see _task_label_names)."""
    return ", ".join(f"{k} {v}" for k, v in _task_label_names(exp, spec, df).items())


def _fmt(v: float) -> str:
    return tables.fmt(float(v))

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
        check = spec.all_claims[0].check if spec.all_claims else {}   # the first claim picks the metric shown
        sec = {"artifact": key, "kind": spec.kind, "title": spec.title or key, "html": None,
               "png": None, "caption": "", "claim": None}
        values, folder, kind = None, None, None   # what the claim is judged on
        if spec.kind == "table":
            shown, numeric = artifact_tables(key, spec, exp, u, df)
            files[f"{key}.csv"] = numeric.to_csv(index=False, na_rep="nan", float_format="%.10g")
            files[f"{key}.md"] = tables.to_markdown(shown)
            notes = _notes(u) + settings_notes(u[u["status"] == RAN], run_settings)
            files[f"{key}.html"] = tables.to_html(shown) + "".join(
                f'<p class="note">{html.escape(n)}</p>\n' for n in notes)
            sec["html"] = f"{key}.html"
            if spec.plot == "per_label":   # the paper's box plots per structure (Fig. 10)
                # deferred: pulls in matplotlib
                from diffreg.report.figures.per_label import dice_per_label_boxplot
                png = dice_per_label_boxplot(df, spec.title or key, _task_label_names(exp, spec, df),
                                             row_order(spec, u, {}), check.get("metric", "dice"))
                if png is not None:
                    files[f"{key}.png"] = png
                    sec["png"] = f"{key}.png"
            ran = sorted(set(df["method"])) if len(df) else []
            names = _task_labels(exp, spec, df) or labels
            sec["caption"] = (f"{len(ran)} of {len(u)} planned rows ran" if len(u) else "no rows planned") + \
                (f"; labels: {names}" if names else "") + \
                ("" if ran else ". Nothing ran for this table: only the paper's numbers are shown")
            kind = "table"
        elif spec.sweep:
            param = str(spec.sweep.param)
            metric = check.get("metric", "dice")
            st = sweep_table(u, df, metric)
            files[f"{key}.csv"] = st.to_csv(index=False, na_rep="nan", float_format="%.10g")
            png = sweep_figure(st, param, spec.title or key, metric)
            best = sweep_best(st, metric)
            fixed = ", ".join(f"{k} {v}" for k, v in spec.sweep.fixed.items())
            if png is not None:
                files[f"{key}.png"] = png
                sec["png"] = f"{key}.png"
                sec["caption"] = (f"mean {metric} ± SD over pairs vs {param} ({fixed}); best {param} = {best[0]} "
                                  f"({_fmt(best[1])}); {int((st['n'] > 0).sum())} of {len(st)} values ran")
            else:
                sec["caption"] = f"Nothing ran for this sweep over {param} ({len(st)} values planned)"
            if spec.paper:
                sec["caption"] += f". Paper: {spec.paper}"
            kind = "sweep"
        elif spec.function:
            fid, folder = figure_folder(name, key, u, plan_figures, inp.figures)
            found = _figure_files(check, folder)
            for ext, src in found.items():
                files[f"{key}.{ext}"] = src
            sec["png"] = f"{key}.png" if "png" in found else None
            settings = ", ".join(f"{k} {_setting_text(v)}" for k, v in spec.settings.items())
            fn = spec.function
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
        elif spec.runs and spec.from_:
            rows, pairs, used = (qualitative_rows(spec, uses, key, regs, images, metrics)
                                 if regs and images is not None else ([], [], []))
            show = spec.show
            png, what = None, ""
            if rows:
                title = f"{spec.title or key}\npair {'; '.join(pairs)}"
                png, what = qualitative_view(show, rows, used, title, exp, spec,
                                             images.only(dataset_of(metrics, used[0].method)))
            if png is not None:
                files[f"{key}.png"] = png
                sec["png"] = f"{key}.png"
                slice_note = "mid axial slice; " if rows[0].data.fixed.ndim == 3 else ""
                sec["caption"] = (f"{slice_note}pair {'; '.join(pairs)}; rows: {len(rows)} of {len(spec.runs)} "
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
        for i, spec_claim in enumerate(spec.all_claims):
            claim = judged_claim(spec_claim, f"{key}-{i + 1}" if i else key, kind, df, u, folder, files)
            sec["claims"].append(claim)
            claims.append({"artifact": key, **claim})
        sec["claim"] = sec["claims"][0] if sec["claims"] else None
        # regenerated: something of ours ran (a table row with metrics, a drawn figure), not only the paper's numbers
        sec["regenerated"] = bool(sec["png"]) or (spec.kind == "table" and len(df) > 0)
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

"""The HTML report: one self-contained file (inline CSS, PNG figures as base64 data URIs, links to
the pipeline's own reports by relative path, no external resources)."""
from __future__ import annotations

import base64
import datetime as _dt
import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from diffreg.errors import InputError
from diffreg.io import atomic_path
from diffreg.metrics_table import read_metrics
from diffreg.registration_outputs import ImageIndex, Registration, find_registrations, load_pair
from diffreg.report import figures, provenance, stats
from diffreg.report.experiment_sections import report_sections
from diffreg.report.scorecard import scorecard
from .standins import standin_figures

TEMPLATE = Path(__file__).resolve().parents[3] / "reports" / "report.html.j2"
VERSION_ORDER = ["diffreg", "python", "torch", "monai", "numpy", "nibabel", "antspyx", "diffusers", "pandas"]


@dataclass
class ReportInputs:
    tables: Path
    registrations: list[Path]
    images: list[Path]
    pipeline_info: Path | None = None
    pipeline_info_href: str | None = None   # link prefix for pipeline_info files, else relative paths
    label_names: dict[int, str] = field(default_factory=dict)
    experiments: list[Path] = field(default_factory=list)   # folders of `diffreg experiment-artifacts`
    provenance: Path | None = None      # provenance.json of the workflow (command line, params, Nextflow)
    results_href: str | None = None     # link prefix of the published results folder, else relative paths
    software_versions: Path | None = None   # software_versions.yml of the workflow (versions per process)


def results_layout(results: str | os.PathLike) -> ReportInputs:
    """The published layout: tables/, registrations/<method>__<pair>/, preprocessed/, pipeline_info/."""
    root = Path(results)
    if not root.is_dir():
        raise InputError(f"{root}: results directory not found")
    info = root / "pipeline_info"
    tables = root / "tables"
    if not (tables / "table.html").is_file():  # a published folder may nest one level (tables/tables/)
        nested = sorted(tables.glob("*/table.html")) if tables.is_dir() else []
        tables = nested[0].parent if len(nested) == 1 else tables
    experiments = sorted(p.parent for p in (root / "experiments").glob("*/index.json"))
    regs = root / "registrations"
    return ReportInputs(tables=tables, registrations=[regs] if regs.is_dir() else [],
                        images=[root / "preprocessed"], pipeline_info=info if info.is_dir() else None,
                        experiments=experiments)


# ----------------------------------------------------------------------------- pieces

def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def run_summary(regs: list[Registration], extra_runs: list[dict]) -> tuple[list[str], list[tuple[str, str]], list[dict]]:
    """Commits, versions (distinct values joined) and per-method device/threads from run.json files."""
    runs = [r.run for r in regs] + extra_runs
    commits = sorted({str(r["git_commit"]) for r in runs if r.get("git_commit")})
    versions: dict[str, set[str]] = defaultdict(set)
    for r in runs:
        for k, v in (r.get("versions") or {}).items():
            versions[k].add(str(v))
    names = [k for k in VERSION_ORDER if k in versions] + sorted(k for k in versions if k not in VERSION_ORDER)
    version_rows = [(k, ", ".join(sorted(versions[k]))) for k in names]
    by_method: dict[str, list[dict]] = defaultdict(list)
    for reg in regs:
        by_method[reg.method].append(reg.run)
    methods = []
    for m, rs in by_method.items():
        methods.append({
            "name": m,
            "pairs": len({r["pair"] for r in rs}),
            "device": ", ".join(sorted({str(r["device"]) for r in rs if r.get("device")})) or "–",
            "threads": ", ".join(sorted({str(r["threads"]) for r in rs if r.get("threads") is not None})) or "–",
        })
    return commits, version_rows, methods


def choose_pairs(regs: list[Registration]) -> dict[str, list[Registration]]:
    """Per dataset, the registrations of the pair that the most methods registered (ties: the
    first pair by name), one per method in first-seen order."""
    groups: dict[tuple[str, str], dict[str, Registration]] = defaultdict(dict)
    for reg in regs:
        groups[(str(reg.run.get("dataset", "")), reg.pair)].setdefault(reg.method, reg)
    chosen: dict[str, list[Registration]] = {}
    for (dataset, pair) in sorted(groups, key=lambda k: (k[0], -len(groups[k]), k[1])):
        if dataset not in chosen:
            chosen[dataset] = list(groups[(dataset, pair)].values())
    return chosen


def _pair_dice(metrics: pd.DataFrame, method: str, pair: str) -> float | None:
    sel = metrics[(metrics["method"] == method) & (metrics["pair"] == pair)
                  & (metrics["metric"] == "dice") & (metrics["label"] == "mean")]
    return float(sel["value"].iloc[0]) if len(sel) else None


def pipeline_links(inputs: ReportInputs, out_dir: Path) -> list[dict]:
    info = inputs.pipeline_info
    files = sorted(f for f in info.iterdir() if f.is_file()) if info and info.is_dir() else []
    if inputs.pipeline_info_href is not None:
        prefix = inputs.pipeline_info_href.rstrip("/")
        if not files:
            return [{"name": "pipeline_info/", "href": quote(prefix + "/")}]
        return [{"name": f.name, "href": quote(f"{prefix}/{f.name}")} for f in files]
    return [{"name": f.name, "href": quote(Path(os.path.relpath(f.resolve(), out_dir.resolve())).as_posix())}
            for f in files]


def _b64(png: bytes) -> str:
    return base64.b64encode(png).decode("ascii")


def qc_figures(image_dirs: list[Path]) -> list[dict]:
    """The before/after pictures PREPROCESS writes (<subject>_qc.png), one figure per subject."""
    found = sorted({p.name: p for d in image_dirs if d.is_dir() for p in d.rglob("*_qc.png")}.items())
    return [{"heading": f"Preprocessing QC ({name[:-len('_qc.png')]})",
             "alt": f"mid slices before and after preprocessing of {name[:-len('_qc.png')]}",
             "png_b64": _b64(path.read_bytes()),
             "caption": "before and after affine alignment, cropping and intensity normalisation; "
                        "the reference the subject was aligned to."}
            for name, path in found]


def results_link(inputs: ReportInputs, out_dir: Path, published: str, actual: Path) -> str:
    """The href of a results file: ``<results_href>/<published path>`` when the page is published
    elsewhere than it is written (the pipeline), else its path relative to the page."""
    if inputs.results_href is not None:
        return quote(f"{inputs.results_href.rstrip('/')}/{published}")
    return quote(Path(os.path.relpath(actual.resolve(), out_dir.resolve())).as_posix())


def provenance_context(inputs: ReportInputs, out_dir: Path) -> dict:
    """Everything the Provenance section shows (see provenance.py)."""
    meta = provenance.read_meta(inputs.provenance or provenance.newest(inputs.pipeline_info, "provenance*.json"))
    info = inputs.pipeline_info
    if info is None and meta.get("pipeline_info"):   # the pipeline's own folder, read where it is
        info = Path(str(meta["pipeline_info"]))
    trace_path = provenance.newest(info, "trace_*.txt")
    trace = provenance.read_trace(trace_path)
    trace_href = None
    if trace_path is not None:
        trace_href = (quote(f"{inputs.pipeline_info_href.rstrip('/')}/{trace_path.name}")
                      if inputs.pipeline_info_href is not None
                      else quote(Path(os.path.relpath(trace_path.resolve(), out_dir.resolve())).as_posix()))
    git = provenance.git_state()
    run = [("git commit", meta.get("git_commit") or git["commit"]),
           ("uncommitted changes", meta.get("git_dirty") or git["dirty"]),
           ("command line", meta.get("command_line") or "unknown (report rendered outside a pipeline run)"),
           ("profile", meta.get("profile") or "unknown")]
    run += [(k.replace("_", " "), str(meta[k])) for k in ("run_name", "session_id", "start", "launch_dir", "work_dir",
                                                          "container_engine") if meta.get(k)]
    summary = provenance.process_summary(trace) if trace is not None and len(trace) else None
    # through the task server the trace measures each task's client: its memory says nothing of the work
    served = str((meta.get("params") or {}).get("task_server", "")).lower() == "true"
    return {
        "run": run,
        "skipped": provenance.skipped_rows(meta),
        "params": provenance.params_rows(meta),
        "packages": provenance.package_versions(),
        "tools": provenance.tool_versions(meta),
        "per_process": provenance.software_versions(inputs.software_versions or (info / "software_versions.yml"
                                                                                if info is not None else None)),
        "machine": provenance.machine(),
        "trace_name": trace_path.name if trace_path else None,
        "trace_href": trace_href,
        "trace_summary": [] if summary is None else [
            {"process": r.process, "tasks": int(r.tasks), "total": _fmt_s(r.total_wall_s),
             "max": _fmt_s(r.max_wall_s), "rss": "–" if served or pd.isna(r.max_peak_rss_mb) else f"{r.max_peak_rss_mb:.0f}"}
            for r in summary.itertuples()],
        "trace_served": served,
        "trace_tasks": [] if trace is None else trace.to_dict("records"),
        "trace_columns": [] if trace is None else list(trace.columns),
    }


def _fmt_s(v: float) -> str:
    return "–" if pd.isna(v) else f"{v:.1f}"


# ----------------------------------------------------------------------------- the report

def build_report(inputs: ReportInputs, out: str | os.PathLike, title: str = "diffreg-nf results",
                 template: str | os.PathLike | None = None) -> Path:
    import jinja2

    out = Path(out)
    template = Path(template) if template else TEMPLATE
    if not template.is_file():
        raise InputError(f"{template}: report template not found")
    if not inputs.tables.is_dir():
        raise InputError(f"{inputs.tables}: tables directory not found")
    table_html_path = inputs.tables / "table.html"
    if not table_html_path.is_file():
        raise InputError(f"{table_html_path}: file not found (run `diffreg tabulate` first)")
    metrics = read_metrics(inputs.tables / "metrics_all.csv", allow_empty=True)
    regs = find_registrations(inputs.registrations) if inputs.registrations else []
    images = ImageIndex(inputs.images)

    figs = []
    for dataset, chosen in choose_pairs(regs).items():
        rows = [figures.QualitativeRow(r.method, load_pair(r, images), _pair_dice(metrics, r.method, r.pair))
                for r in chosen]
        pair = chosen[0].pair
        what = f"{dataset}, pair {pair}" if dataset else f"pair {pair}"
        slice_note = "mid axial slice; " if rows[0].data.fixed.ndim == 3 else ""
        figs.append({
            "heading": f"Qualitative results ({what})",
            "alt": f"fixed, moving, warped, grid and difference images of {pair} for each method",
            "png_b64": _b64(figures.qualitative_figure(rows, what)),
            "caption": (f"{slice_note}rows: methods; the grid shows x + u(x) (the backward map into the "
                        "moving image); the difference uses one colour scale for all methods."),
            "sources": [],
        })
    for f in figs:   # the Dice printed on the qualitative figure: metrics_all.csv
        f["sources"] = [{"name": "metrics_all.csv", "href": results_link(inputs, out.parent, "tables/metrics_all.csv",
                                                                         inputs.tables / "metrics_all.csv")}]
    out_dir = out.parent
    metrics_href = results_link(inputs, out_dir, "tables/metrics_all.csv", inputs.tables / "metrics_all.csv")
    for group, sub in metrics.groupby(["experiment", "artifact", "dataset"], sort=False):
        png = figures.dice_boxplot(sub, " / ".join(group))
        if png is not None:
            figs.append({"heading": f"Mean Dice per method ({' / '.join(group)})",
                         "alt": "box plot of the mean Dice of each pair per method",
                         "png_b64": _b64(png),
                         "caption": "one point per pair; initial: before registration.",
                         "sources": [{"name": "metrics_all.csv", "href": metrics_href}]})

    qc = standin_figures(inputs.images) + qc_figures(inputs.images)   # after the papers' sections: the longest, least read part
    experiments = [report_sections(d, results_link(inputs, out_dir, f"experiments/{d.name}", d))
                   for d in inputs.experiments]
    table_sources = [{"name": n, "href": results_link(inputs, out_dir, f"tables/{n}", inputs.tables / n)}
                     for n in ("table.csv", "metrics_all.csv") if (inputs.tables / n).is_file()]

    extra = [_read_json(inputs.tables / "run.json")]
    commits, versions, methods = run_summary(regs, [e for e in extra if e])
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                             loader=jinja2.FileSystemLoader(str(template.parent)))
    page = env.get_template(template.name).render(
        title=title,
        generated=_dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        commits=commits, versions=versions, methods=methods,
        labels=", ".join(f"{k} {v}" for k, v in sorted(inputs.label_names.items())),
        table_html=table_html_path.read_text(encoding="utf-8"),
        table_sources=table_sources,
        stats_text=stats.METHOD_TEXT,
        provenance=provenance_context(inputs, out_dir),
        figures=figs,
        experiments=experiments,
        scorecard=scorecard(experiments),
        verdict_names=stats.VERDICTS,
        qc_figures=qc,
        pipeline_links=pipeline_links(inputs, out.parent),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return out


__all__ = ["ReportInputs", "results_layout", "build_report", "choose_pairs", "run_summary", "pipeline_links"]

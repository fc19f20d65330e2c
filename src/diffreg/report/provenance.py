"""What the report states about how its numbers were made: code version, command line, every
parameter, package and tool versions, per-task time and memory (Nextflow's trace) and the machine.

Sources, each optional (a missing one reads "unknown" rather than failing the report):
``provenance.json`` written by the workflow at launch (command line, profile, params, Nextflow
version), the newest ``trace_*.txt`` of pipeline_info/, ``software_versions.yml`` (what each
process's tasks recorded in their run.json), git of this clone, installed packages and the tools on
PATH, /proc and nvidia-smi of the machine rendering the report.
"""
from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import pandas as pd
import yaml

from ..yaml_text import parse_yaml

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ["torch", "monai", "diffusers", "nibabel", "antspyx", "numpy", "scipy", "pandas", "matplotlib",
            "scikit-image", "SimpleITK", "jinja2", "pyyaml"]
TRACE_COLUMNS = ["name", "status", "realtime", "duration", "%cpu", "peak_rss"]


def _run(cmd: list[str], timeout: float = 10) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return ""
    return (out.stdout or out.stderr).strip() if out.returncode == 0 else ""


def git_state(root: Path = ROOT) -> dict:
    """Commit of the clone and whether tracked files differ from it (untracked files do not
    change what ran)."""
    commit = _run(["git", "-C", str(root), "rev-parse", "HEAD"])
    if not commit:
        return {"commit": "unknown", "dirty": "unknown"}
    status = _run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"])
    changed = [line[3:] for line in status.splitlines() if line.strip()]
    return {"commit": commit, "dirty": f"yes ({len(changed)} changed file(s))" if changed else "no"}


def package_versions() -> list[tuple[str, str]]:
    out = [("python", platform.python_version())]
    for name in PACKAGES:
        try:
            out.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            pass
    return out


def tool_versions(meta: dict) -> list[tuple[str, str]]:
    """Nextflow (from the run, else the launcher on PATH), NiftyReg and the ANTs command line."""
    nf = meta.get("nextflow") or ""
    if not nf and (launcher := shutil.which("nextflow")):
        try:
            m = re.search(r"NXF_VER=(\S+)", Path(launcher).read_text(errors="replace")[:20000])
            nf = m.group(1) if m else ""
        except OSError:
            pass
    out = [("Nextflow", nf or "unknown")]
    out.append(("NiftyReg (reg_aladin)", _run(["reg_aladin", "--version"]).splitlines()[0] if shutil.which("reg_aladin")
                else "not on PATH"))
    ants = _run(["antsRegistration", "--version"]) if shutil.which("antsRegistration") else ""
    m = re.search(r"Version:\s*(\S+)", ants)
    out.append(("ANTs (antsRegistration)", m.group(1) if m else "not on PATH (ANTs runs through antspyx)"))
    return out


# the columns of the per-process versions first in this order, then the others by name
VERSION_COLUMNS = ["diffreg", "diffreg_commit", "python", "torch", "monai", "numpy", "nibabel", "antspyx",
                   "diffusers", "pandas", "Nextflow"]


def software_versions(path: Path | None) -> dict:
    """software_versions.yml as a table: one row per process, one column per program ("–": not
    used by that process; a process whose run.json recorded none says so). Empty when unreadable."""
    try:
        data = parse_yaml(path.read_text()) if path is not None and path.is_file() else None
    except (OSError, yaml.YAMLError):
        data = None
    if not isinstance(data, dict):
        return {"columns": [], "rows": []}
    found = {str(k): v for k, v in data.items()}
    seen = {str(p) for v in found.values() if isinstance(v, dict) for p in v}
    columns = [c for c in VERSION_COLUMNS if c in seen] + sorted(seen - set(VERSION_COLUMNS))
    rows = []
    for process, programs in found.items():
        if not isinstance(programs, dict):
            rows.append({"process": process, "note": str(programs), "values": []})
            continue
        programs = {str(k): str(v) for k, v in programs.items()}
        # a commit is told apart by its first 12 hex digits (the YAML keeps it whole)
        short = {k: ", ".join(c[:12] for c in v.split(", ")) if k == "diffreg_commit" else v for k, v in programs.items()}
        rows.append({"process": process, "note": "", "values": [short.get(c, "–") for c in columns]})
    return {"columns": columns, "rows": rows}


def machine() -> list[tuple[str, str]]:
    cpu = platform.processor() or platform.machine()
    try:
        m = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = m.group(1).strip() if m else cpu
    except OSError:
        pass
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    mem = ""
    try:
        m = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
        mem = f"{int(m.group(1)) / 2**20:.1f} GiB" if m else ""
    except OSError:
        pass
    gpus = _run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"]) \
        if shutil.which("nvidia-smi") else ""
    env = ", ".join(f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES") if k in os.environ)
    return [("host", platform.node()), ("system", f"{platform.system()} {platform.release()}"),
            ("CPU", f"{cpu}; {os.cpu_count()} logical CPUs, {threads} usable by this process"),
            ("memory", mem or "unknown"), ("GPU", gpus.replace("\n", "; ") or "none found (no nvidia-smi)"),
            ("thread settings", env or "OMP_NUM_THREADS unset")]


def read_meta(path: Path | None) -> dict:
    if path is None or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def newest(folder: Path | None, pattern: str) -> Path | None:
    """The newest matching file: a results folder keeps the files of every run, the last run's is newest."""
    if folder is None or not folder.is_dir():
        return None
    found = sorted(folder.glob(pattern), key=lambda p: (p.stat().st_mtime, p.name))
    return found[-1] if found else None


def read_trace(path: Path | None) -> pd.DataFrame | None:
    """Nextflow's trace (tab-separated, one line per task), the columns the report shows."""
    if path is None:
        return None
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError):
        return None
    cols = [c for c in TRACE_COLUMNS if c in df.columns]
    return df[cols] if "name" in cols else None


_UNITS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_BYTES = {"B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40}


def seconds(text: str) -> float:
    """Nextflow's durations ("1m 3s", "852ms") in seconds; NaN when not one."""
    parts = re.findall(r"([\d.]+)\s*(ms|s|m|h|d)\b", str(text))
    return sum(float(v) * _UNITS[u] for v, u in parts) if parts else float("nan")


def nbytes(text: str) -> float:
    m = re.match(r"\s*([\d.]+)\s*([KMGT]?B)\s*$", str(text))
    return float(m.group(1)) * _BYTES[m.group(2)] if m else float("nan")


def process_summary(trace: pd.DataFrame) -> pd.DataFrame:
    """Per process: tasks, total and longest wall time (realtime), largest peak RSS."""
    proc = trace["name"].str.replace(r"\s*\(.*\)$", "", regex=True).str.split(":").str[-1]
    d = pd.DataFrame({"process": proc, "wall_s": trace.get("realtime", pd.Series(dtype=str)).map(seconds),
                      "rss": trace.get("peak_rss", pd.Series(dtype=str)).map(nbytes)})
    g = d.groupby("process", sort=False)
    return pd.DataFrame({"tasks": g.size(), "total_wall_s": g["wall_s"].sum(min_count=1),
                         "max_wall_s": g["wall_s"].max(), "max_peak_rss_mb": g["rss"].max() / 2**20}).reset_index()


def skipped_rows(meta: dict) -> list[dict]:
    """Per user dataset: how many items its adapter skipped and why (skipped.csv beside the sheet),
    or that the sheet has no skipped.csv (written by hand, or by another tool)."""
    rows = []
    for name, items in sorted((meta.get("skipped") or {}).items()):
        if items is None:
            rows.append({"dataset": name, "count": "–", "detail": "no skipped.csv beside the samplesheet"})
        else:
            rows.append({"dataset": name, "count": str(len(items)),
                         "detail": "; ".join(f"{i}: {r}" for i, r in items) or "nothing skipped"})
    return rows


def params_rows(meta: dict) -> list[tuple[str, str]]:
    params = meta.get("params") or {}
    return [(str(k), json.dumps(v) if isinstance(v, (dict, list)) else str(v)) for k, v in sorted(params.items())]


__all__ = ["git_state", "package_versions", "tool_versions", "software_versions", "machine", "read_meta", "newest", "read_trace", "skipped_rows",
           "process_summary", "params_rows", "seconds", "nbytes"]

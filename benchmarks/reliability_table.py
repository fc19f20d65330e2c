"""Seconds from command to error message for every rejection case of tests/reliability/: the CLI
cases as a user runs them (a fresh `python -m diffreg.cli` process each, imports included), the
`diffreg launch` cases main.nf runs before any task (the same, on the parameters as JSON) and the
pipeline cases (`nextflow run main.nf -profile test ...`, JVM start included). Prints a markdown
table (docs/reliability.md keeps the last one).

    .venv/bin/python benchmarks/reliability_table.py [--only cli|pipeline] [-k SUBSTRING]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from diffreg.cli import main  # noqa: E402
from tests.reliability import test_cli_rejections as cli  # noqa: E402
from tests.reliability import test_disk_full as disk  # noqa: E402
from tests.reliability import test_launch_rejections as launch  # noqa: E402
from tests.reliability import test_pipeline_rejections as nf  # noqa: E402

# pipeline cases beyond the tests' (each costs a JVM start there): the table covers them all
EXTRA_PIPELINE = [
    ("unknown-parameter", ["--trian_iterations", "5"], None),
    ("toy-ndim-4", ["--toy_ndim", "4"], None),
    ("device-tpu", ["--device", "tpu"], None),
    ("unknown-method", ["--methods", "voxelmorf"], None),
    ("seed-negative", ["--seed", "-1"], None),
    ("missing-input", ["--input", "nope.csv"], None),
]

# a training whose loss turns NaN at step 2 (test-only method of tests/reliability/plugin_methods.py)
DIVERGED = ("train-diverged-nan-loss", None, lambda w, d, m: [
    "train", "--method", "nanloss", "--data-dir", str(d), "--subjects", "sub-001", "--iterations", "5",
    "--device", "cpu", "--out", str(w / "model")], 65, None)


def _cli_row(case, w: Path, toy: Path, model: Path, env: dict) -> tuple[str, int, str, float]:
    name, setup, argv, _, _ = case
    w.mkdir()
    if setup:
        setup(w)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "diffreg.cli", *argv(w, toy, model)], capture_output=True,
                          text=True, env=env, cwd=w)
    elapsed = time.perf_counter() - t0
    err = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    return name, proc.returncode, (err[-1] if err else "(no message)"), elapsed


def _launch_row(case, w: Path, env: dict) -> tuple[str, int, str, float]:
    """A `diffreg launch` case as main.nf runs it: a fresh process on the parameters as JSON."""
    import json
    name, changes, _ = case
    w.mkdir()
    params = {**launch.BASE, **(changes(w) if callable(changes) else changes)}
    (w / "params.json").write_text(json.dumps(params))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "diffreg.cli", "launch", "--params", str(w / "params.json"),
                           "--out", str(w / "launch.json")], capture_output=True, text=True, env=env, cwd=w)
    elapsed = time.perf_counter() - t0
    err = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    return name, proc.returncode, (err[-1] if err else "(no message)"), elapsed


def _pipeline_row(name, args, w: Path, toy: Path) -> tuple[str, int, str, float]:
    w.mkdir()
    try:
        rc, line, elapsed = nf.rejection(w, args(w, toy) if callable(args) else args)
    except AssertionError as exc:       # a case that ran a task or printed more: show it, don't stop
        rc, line, elapsed = -1, f"(not one line before any task: {str(exc)[:120]})", float("nan")
    return name, rc, line, elapsed


def _disk_full_row(w: Path) -> tuple[str, int, str, float]:
    """The run on a full --outdir (a 64 KiB tmpfs): the error line naming the cause, seconds to the end."""
    import pytest
    w.mkdir()
    t0 = time.perf_counter()
    try:
        rc, errors, full = disk.disk_full(w)
    except pytest.skip.Exception as exc:
        return "disk-full", -1, f"(skipped: {exc})", float("nan")
    line = disk.cause_line(errors) or f"(no line names the cause; last: {errors[-1] if errors else None})"
    return "disk-full", rc, line.replace(str(full), "{outdir}"), time.perf_counter() - t0


def _clean(text: str, paths: dict[str, Path]) -> str:
    for tag, p in paths.items():
        text = text.replace(str(p), tag)
    return text.replace("|", "\\|")


def main_(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["cli", "pipeline"])
    ap.add_argument("-k", default="", help="only cases whose id contains this")
    a = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        toy, model = tmp / "toy", tmp / "model"
        # the fixtures of tests/reliability/conftest.py; their log goes to stderr, the table alone to stdout
        with contextlib.redirect_stdout(sys.stderr):
            assert main(["toy-data", "--outdir", str(toy), "--n-subjects", "3", "--size", "16", "--ndim", "2"]) == 0
            assert main(["train", "--method", "voxelmorph", "--data-dir", str(toy), "--subjects", "sub-001",
                         "--iterations", "2", "--device", "cpu", "--threads", "1", "--out", str(model)]) == 0
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        env.pop("DIFFREG_PLUGINS", None)
        if a.only != "pipeline":
            plugin_env = {**env, "DIFFREG_PLUGINS": str(ROOT / "tests/reliability/plugin_methods.py")}
            for i, case in enumerate(c for c in cli.CASES + [DIVERGED] if a.k in c[0]):
                w = tmp / f"cli{i}"
                name, rc, line, s = _cli_row(case, w, toy, model, plugin_env if case is DIVERGED else env)
                rows.append(("CLI", name, rc, _clean(line, {"{w}": w, "{toy}": toy, "{model}": model}), s))
                print(f"{name}: {s:.1f} s", file=sys.stderr, flush=True)
            for i, case in enumerate(c for c in launch.CASES if a.k in c[0]):
                w = tmp / f"launch{i}"
                name, rc, line, s = _launch_row(case, w, env)
                rows.append(("launch", name, rc, _clean(line, {"{w}": w}), s))
                print(f"{name}: {s:.1f} s", file=sys.stderr, flush=True)
        if a.only != "cli":
            cases = [(c[0], c[1]) for c in nf.CASES] + [(c[0], c[1]) for c in EXTRA_PIPELINE]
            for i, (name, args) in enumerate(c for c in cases if a.k in c[0]):
                w = tmp / f"nf{i}"
                name, rc, line, s = _pipeline_row(name, args, w, toy)
                rows.append(("pipeline", name, rc, _clean(line, {"{w}": w, "{toy}": toy}), s))
                print(f"{name}: {s:.1f} s", file=sys.stderr, flush=True)
            if a.k in "disk-full":
                name, rc, line, s = _disk_full_row(tmp / "disk-full")
                rows.append(("pipeline", name, rc, _clean(line, {}), s))
                print(f"{name}: {s:.1f} s", file=sys.stderr, flush=True)
    print("| level | case | exit | message | seconds |")
    print("|---|---|---|---|---|")
    for level, name, rc, line, s in rows:
        # a double-backtick code span: messages hold <modality> and `diffreg train`
        print(f"| {level} | {name} | {rc} | `` {line} `` | {s:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main_())

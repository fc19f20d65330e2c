"""The single entry point: help lists every pipeline parameter, bad input is one line, exit code 2."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from diffreg import cli

ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_every_pipeline_parameter(capsys):
    try:
        cli.main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    schema = json.loads((ROOT / "nextflow_schema.json").read_text())
    names = [n for g in schema["$defs"].values() for n in g["properties"]]
    assert len(names) > 20
    for name in names:
        assert f"--{name}" in out
    for command in ("toy-data", "preprocess", "train", "register", "baseline", "evaluate", "report"):
        assert command in out


def test_input_error_is_one_line(tmp_path):
    proc = subprocess.run([str(ROOT / "bin/diffreg"), "register", "--model", str(tmp_path),
                           "--moving", str(tmp_path / "m.nii.gz"), "--fixed", str(tmp_path / "f.nii.gz"),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("diffreg: error:") and "m.nii.gz" in lines[0]
    assert not (tmp_path / "out").exists()


def test_version_is_fast_and_plain():
    proc = subprocess.run([sys.executable, "-m", "diffreg.cli", "--version"], capture_output=True, text=True,
                          cwd=ROOT, env={"PYTHONPATH": str(ROOT / "src")})
    assert proc.stdout.strip().startswith("diffreg ")

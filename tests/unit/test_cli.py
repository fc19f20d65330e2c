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


def test_preprocess_prealigned_skips_the_affine(tmp_path):
    """The samplesheet's prealigned column (meta.prealigned -> --prealigned): resample onto the
    reference grid only, whatever --transform the pipeline's ext.args give."""
    import json as _json

    from diffreg.cli import main as _main

    toy = tmp_path / "toy"
    assert _main(["toy-data", "--outdir", str(toy), "--n-subjects", "3", "--size", "16", "--ndim", "2"]) == 0
    for flag, expected in (([], "Affine"), (["--prealigned"], "none")):
        out = tmp_path / f"out{len(flag)}"
        assert _main(["preprocess", "--subject", "sub-001", "--images", str(toy / "sub-001_be.nii.gz"),
                      "--reference", str(toy / "template_be.nii.gz"), "--transform", "Affine", *flag,
                      "--outdir", str(out)]) == 0
        assert _json.loads((out / "run.json").read_text())["transform"]["type"] == expected

"""Settings main.nf refuses before any task: one exact line, a non-zero exit, no task, and nothing
in --outdir but the refused launch's pipeline_info (its trace and its runs.tsv row).

Each case is one `nextflow run` (a JVM start, 10-20 s of CPU on 2 cores: a Nextflow error ends the
launch, so cases cannot share one). The line comes from `diffreg launch` for every case, so the test
runs through Nextflow only the cases whose value takes a different way there (a number, a string
Nextflow could read as one, a file relative to the launch folder, a user's samplesheet); every other
case of CASES has its twin, same line, in-process in test_launch_rejections.py (checked below), and
benchmarks/reliability_table.py times them all through Nextflow. Cases test_pipeline.py already has
(an unknown parameter, a missing --input, a malformed samplesheet) are not repeated."""
from __future__ import annotations

import csv
import re
import time
from pathlib import Path

import pytest

from tests.pipeline.conftest import ROOT, run_nextflow

pytestmark = pytest.mark.pipeline

_LR = "must be a number in (0, 1] (Adam moves every weight by about lr per step)"


def _bad_json(w: Path, toy: Path) -> list[str]:
    # a trailing comma: Groovy's lenient JsonSlurper read it, Python's json failed at EVALUATE
    (w / "names.json").write_text('{"0": "background", "1": "CSF",}')
    return ["--label_names", "names.json"]


def _sheet_without_flair(w: Path, toy: Path) -> list[str]:
    return ["--input", str(toy / "samplesheet.csv"), "--moving_modality", "flair"]


# (id, extra arguments or fn(work dir, toy data) -> arguments, exact message; {toy}: the toy data folder)
CASES = [
    ("learning-rate-100", ["--learning_rate", "100"], f"Parameter --learning_rate: {_LR}, got 100"),
    ("train-iterations-0", ["--train_iterations", "0"], "Parameter --train_iterations: must be an integer >= 1, got 0"),
    ("lambda-reg-nan", ["--lambda_reg", "nan"], "Parameter --lambda_reg: expected number, got 'nan'"),
    ("unknown-baseline", ["--baselines", "syn,foo"],
     "Parameter --baselines: unknown baseline(s) foo (known: fireants, lddmm, niftyreg, syn)"),
    ("unknown-paper", ["--papers", "nope"],
     "Parameter --papers: no experiments/nope.yaml (known: dgir, diffusemorph, diffusereg, ldm_morph, m2m_reg, or a path to a YAML file)"),
    ("unknown-artifact", ["--papers", "dgir", "--artifacts", "dgir:table9"],
     "Parameter --artifacts: 'dgir:table9' is no paper run nor an artifact of one (papers: dgir; give PAPER, "
     "PAPER:ARTIFACT, PAPER:ARTIFACT:ROW+ROW or ARTIFACT)"),
    ("toy-moving-modality", ["--moving_modality", "flair"],
     "Parameter --moving_modality: 'flair' is no modality of the embedded toy data (modalities: nbe, be, t2)"),
    ("sheet-moving-modality", _sheet_without_flair,
     "Parameter --moving_modality: 'flair' is no modality of {toy}/samplesheet.csv (image_<modality> columns: nbe, be, t2)"),
    ("label-names-invalid-json", _bad_json,
     "Parameter --label_names: names.json: invalid JSON (Expecting property name enclosed in double quotes: "
     "line 1 column 32 (char 31))"),
    ("crop-shape", ["--crop_shape", "48,x"],
     "Parameter --crop_shape: expected 2 or 3 positive integers separated by commas (e.g. 48,48,48), got '48,x'"),
]


def rejection(cwd: Path, args: list[str]) -> tuple[int, str, float]:
    """rc, the one line after Nextflow's banner, seconds to it (shared with benchmarks/reliability_table.py)."""
    t0 = time.perf_counter()
    proc = run_nextflow(cwd, "-profile", "test", "--outdir", "results", *args, timeout=600)
    elapsed = time.perf_counter() - t0
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines()
             if ln.strip() and not ln.startswith(("N E X T F L O W", "Launching `"))]
    assert "Submitted process" not in proc.stdout, proc.stdout[-2000:]
    assert len(lines) == 1, lines
    return proc.returncode, lines[0], elapsed


THROUGH_NEXTFLOW = ("learning-rate-100", "lambda-reg-nan", "sheet-moving-modality", "label-names-invalid-json")


def test_every_other_case_has_its_in_process_twin():
    from .test_launch_rejections import CASES as IN_PROCESS
    lines = {message.split(" (known: ")[0] for _, _, message in IN_PROCESS}
    others = [(name, message) for name, _, message in CASES if name not in THROUGH_NEXTFLOW]
    assert len(others) == len(CASES) - len(THROUGH_NEXTFLOW)
    assert [name for name, message in others if message.split(" (known: ")[0] not in lines] == []


@pytest.mark.parametrize("name,args,message", [c for c in CASES if c[0] in THROUGH_NEXTFLOW],
                         ids=[c[0] for c in CASES if c[0] in THROUGH_NEXTFLOW])
def test_refused_before_any_task(name, args, message, tmp_path, toy):
    argv = args(tmp_path, toy) if callable(args) else args
    rc, line, _ = rejection(tmp_path, argv)
    assert rc != 0
    assert line == message.replace("{toy}", str(toy))
    work = tmp_path / "work"
    assert not work.exists() or not any(p.name != "diffreg-checkpoints" for p in work.iterdir())
    assert [p.name for p in (tmp_path / "results").iterdir()] == ["pipeline_info"]
    info = sorted(p.name for p in (tmp_path / "results/pipeline_info").iterdir())
    assert len(info) == 2 and info[0] == "runs.tsv" and re.fullmatch(r"trace_[\d_-]+\.txt", info[1]), info
    rows = list(csv.DictReader(open(tmp_path / "results/pipeline_info/runs.tsv"), delimiter="\t"))
    assert [(r["trace"], r["status"], r["error"]) for r in rows] == [(info[1], "failed", line)]

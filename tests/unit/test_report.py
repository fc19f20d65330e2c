"""`diffreg tabulate` and `diffreg report` on data made in code."""
from __future__ import annotations

import base64
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from diffreg.cli import main
from diffreg.metrics_table import COLUMNS, read_metrics
from diffreg.report import tables

from .test_evaluate import constant_field, make_registration

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def long_rows(method, pair, dice_labels, extra=(), dice_before=(0.5, 0.5), artifact="table1"):
    rows = [("exp", artifact, method, "toy", pair, lab, "dice", v) for lab, v in zip(("CSF", "GM"), dice_labels)]
    rows.append(("exp", artifact, method, "toy", pair, "mean", "dice", float(np.nanmean(dice_labels))))
    rows += [("exp", artifact, method, "toy", pair, lab, "dice_before", v) for lab, v in zip(("CSF", "GM"), dice_before)]
    rows.append(("exp", artifact, method, "toy", pair, "mean", "dice_before", float(np.mean(dice_before))))
    rows += [("exp", artifact, method, "toy", pair, "all", m, v) for m, v in extra]
    return rows


def write_csv(path: Path, rows) -> Path:
    pd.DataFrame(rows, columns=COLUMNS).to_csv(path, index=False, na_rep="nan")
    return path


@pytest.fixture
def two_csvs(tmp_path):
    """Method A: mean Dice 0.6, 0.7, 0.8 over three pairs (mean 0.7, sample sd 0.1);
    method B in a second file; one NaN (absent label) that must be skipped."""
    a = []
    for pair, (csf, gm), sd, rt in [("p1", (0.5, 0.7), 0.1, 1.0), ("p2", (0.6, 0.8), 0.2, 2.0),
                                   ("p3", (0.7, 0.9), 0.3, 6.0)]:
        a += long_rows("A", pair, (csf, gm), extra=[("sdlogj", sd), ("pct_jac_nonpos", 0.0),
                                                    ("runtime_s", rt), ("threads", 2)])
    b = long_rows("B", "p1", (0.9, float("nan")), extra=[("sdlogj", 0.5)])
    b += long_rows("B", "p2", (0.7, 0.9), extra=[("sdlogj", 0.7)])
    return write_csv(tmp_path / "a.csv", a), write_csv(tmp_path / "b.csv", b)


def test_tabulate_mean_and_sd(tmp_path, two_csvs):
    out = tmp_path / "tables"
    assert main(["tabulate", "--metrics", *map(str, two_csvs), "--out-dir", str(out)]) == 0
    merged = read_metrics(out / "metrics_all.csv")
    assert len(merged) == sum(len(pd.read_csv(p)) for p in two_csvs)
    t = pd.read_csv(out / "table.csv").set_index("method")
    assert list(t.index) == ["initial", "A", "B"]
    assert t.loc["A", "n"] == 3
    assert t.loc["A", "dice_mean"] == pytest.approx(0.7)
    assert t.loc["A", "dice_sd"] == pytest.approx(0.1)
    assert t.loc["A", "dice:CSF_mean"] == pytest.approx(0.6)
    assert t.loc["A", "dice:GM_sd"] == pytest.approx(0.1)
    assert t.loc["A", "sdlogj_mean"] == pytest.approx(0.2)
    assert t.loc["A", "runtime_s_mean"] == pytest.approx(3.0)
    assert t.loc["A", "runtime_s_sd"] == pytest.approx(np.std([1.0, 2.0, 6.0], ddof=1))
    # B: GM absent in p1 (NaN) -> GM mean over p2 only; its sd over one value is undefined
    assert t.loc["B", "dice:GM_mean"] == pytest.approx(0.9)
    assert math.isnan(t.loc["B", "dice:GM_sd"])
    assert t.loc["B", "dice_mean"] == pytest.approx((0.9 + 0.8) / 2)
    assert math.isnan(t.loc["B", "runtime_s_mean"])
    # initial: Dice before registration, counted once per pair although both methods carry it
    assert t.loc["initial", "n"] == 3 and t.loc["initial", "dice_mean"] == pytest.approx(0.5)
    md = (out / "table.md").read_text()
    assert "| A | 3 | 0.700 ± 0.100 |" in md
    assert "(paper)" not in md and not any(c.startswith("paper_") for c in t.columns)
    frag = (out / "table.html").read_text()
    assert "<td>0.700 ± 0.100</td>" in frag and "<html" not in frag


def test_tabulate_with_paper_numbers(tmp_path, two_csvs):
    paper = tmp_path / "paper.yaml"
    paper.write_text(
        "paper: Test paper, Table 1\n"
        "artifacts:\n"
        "  table1:\n"
        "    runs: [A, B]\n"
        "    rows:\n"
        "      A: {dice: 0.812, sdlogj: [0.3, 0.05]}\n"
        "      C: {dice: '0.90 ± 0.01'}\n"
        "  figure2: {runs: [A]}\n")
    out = tmp_path / "tables"
    assert main(["tabulate", "--metrics", *map(str, two_csvs), "--out-dir", str(out), "--paper", str(paper)]) == 0
    md = (out / "table.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| Method"))
    cols = [c.strip() for c in header.strip("|").split("|")]
    assert cols[cols.index("Dice") + 1] == "Dice (paper)"
    assert cols[cols.index("SDlogJ") + 1] == "SDlogJ (paper)"
    row_a = next(line for line in md.splitlines() if line.startswith("| A |"))
    cells = [c.strip() for c in row_a.strip("|").split("|")]
    assert cells[cols.index("Dice")] == "0.700 ± 0.100" and cells[cols.index("Dice (paper)")] == "0.812"
    assert cells[cols.index("SDlogJ (paper)")] == "0.300 ± 0.050"
    row_c = next(line for line in md.splitlines() if line.startswith("| C |"))
    assert "not run" in row_c and "0.90 ± 0.01" in row_c
    t = pd.read_csv(out / "table.csv").set_index("method")
    assert t.loc["A", "paper_dice"] == pytest.approx(0.812)
    assert 'class="paper"' in (out / "table.html").read_text()


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("diffreg: error: ")
    return err


def test_tabulate_bad_inputs(tmp_path, capsys, two_csvs):
    out = str(tmp_path / "t")
    assert "not found" in _error(capsys, ["tabulate", "--metrics", str(tmp_path / "no.csv"), "--out-dir", out])
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    assert "columns must be" in _error(capsys, ["tabulate", "--metrics", str(bad), "--out-dir", out])
    yml = tmp_path / "p.yaml"
    yml.write_text("artifacts:\n  table1:\n    rows: [1, 2]\n")
    assert "rows must map" in _error(capsys, ["tabulate", "--metrics", str(two_csvs[0]), "--out-dir", out,
                                              "--paper", str(yml)])
    assert not Path(out, "table.csv").exists()


def test_format_rules():
    assert tables.fmt(0.81234) == "0.812"
    assert tables.fmt(0.0012345) == "0.0012"
    assert tables.fmt(123.45) == "123.5"
    assert tables.fmt(float("nan")) == "–"
    assert tables.fmt_mean_sd(0.5, float("nan")) == "0.500"


# ----------------------------------------------------------------------------- report

def make_results(root: Path) -> Path:
    """A published results folder: 2 methods x 2 pairs, metrics, tables, pipeline_info."""
    root.mkdir(parents=True)
    labels = root / "labels.json"
    labels.write_text(json.dumps({"0": "background", "1": "CSF", "2": "grey matter"}))
    for pair in ("p1", "p2"):
        make_registration(root, "identity", pair, constant_field(0.0), moving_shift=2, images_sub="preprocessed/sub")
        make_registration(root, "shift", pair, constant_field(2.0), moving_shift=2, images_sub="preprocessed/sub",
                          runtime=0.5)
    metrics = root / "metrics" / "metrics.csv"
    assert main(["evaluate", "--registration", str(root / "registrations"), "--images-dir",
                 str(root / "preprocessed"), "--label-names", str(labels), "--out", str(metrics)]) == 0
    assert main(["tabulate", "--metrics", str(metrics), "--out-dir", str(root / "tables")]) == 0
    (root / "pipeline_info").mkdir()
    (root / "pipeline_info" / "execution_report_1.html").write_text("<html></html>")
    (root / "pipeline_info" / "pipeline_dag_1.mmd").write_text("graph TD")
    return root


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory) -> Path:
    return make_results(tmp_path_factory.mktemp("published") / "results")


def test_report_is_one_self_contained_file(results_dir, capsys):
    results = results_dir
    out = results / "report" / "index.html"
    capsys.readouterr()
    assert main(["report", "--results", str(results), "--out", str(out),
                 "--label-names", str(results / "labels.json")]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(out)
    page = out.read_text()
    # the table's numbers: identity keeps the initial Dice, the right shift recovers the labels
    t = pd.read_csv(results / "tables" / "table.csv").set_index("method")
    assert t.loc["identity", "dice_mean"] == pytest.approx(t.loc["initial", "dice_mean"])
    assert t.loc["shift", "dice_mean"] == pytest.approx(1.0)
    assert f"{t.loc['identity', 'dice_mean']:.3f} ± 0.000" in page
    assert "1.000 ± 0.000" in page and "0.500 ± 0.000" in page   # Dice and runtime of "shift"
    # figures embedded as PNG, nothing fetched from elsewhere
    images = re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 2
    assert all(base64.b64decode(b)[:8] == PNG_MAGIC for b in images)
    text = re.sub(r"base64,[A-Za-z0-9+/=]+", "base64,", page)   # base64 may spell anything
    assert "http" not in text.lower() and "//" not in re.sub(r"<!--.*?-->", "", text)
    assert re.findall(r'(?:src|href)="([^"]*)"', page).count("../pipeline_info/execution_report_1.html") == 1
    assert 'href="../pipeline_info/pipeline_dag_1.mmd"' in page
    assert "abc123" in page and "<style>" in page and "1 CSF, 2 grey matter" in page
    assert sorted(p.name for p in out.parent.iterdir()) == ["index.html", "run.json"]


def test_report_explicit_inputs_and_href(tmp_path, results_dir):
    results = results_dir
    out = tmp_path / "work" / "index.html"
    assert main(["report", "--tables", str(results / "tables"),
                 "--registrations", *map(str, sorted((results / "registrations").iterdir())),
                 "--images-dir", str(results / "preprocessed"), "--pipeline-info", str(tmp_path / "absent"),
                 "--pipeline-info-href", "../pipeline_info", "--out", str(out)]) == 0
    page = out.read_text()
    assert 'href="../pipeline_info/"' in page
    assert page.count("data:image/png;base64,") == 2


def test_figure_png_size_scales_with_methods(tmp_path):
    from diffreg.registration_outputs import PairData
    from diffreg.report.figures import QualitativeRow, qualitative_figure
    from PIL import Image
    import io
    img = np.random.default_rng(0).uniform(0, 1, (20, 24)).astype(np.float32)
    lab = (img > 0.5).astype(np.int16)
    data = PairData(np.zeros((2, 20, 24), np.float32), img, img, lab, lab)
    one = Image.open(io.BytesIO(qualitative_figure([QualitativeRow("a", data, 1.0)], "2D")))
    three = Image.open(io.BytesIO(qualitative_figure([QualitativeRow(m, data) for m in "abc"], "2D")))
    assert three.size[1] > 2 * one.size[1] and abs(three.size[0] - one.size[0]) < 0.1 * one.size[0]


def test_report_bad_inputs(tmp_path, capsys, results_dir):
    results = Path(shutil.copytree(results_dir, tmp_path / "results"))
    out = str(tmp_path / "r" / "index.html")
    assert "results directory not found" in _error(capsys, ["report", "--results", str(tmp_path / "nope"),
                                                            "--out", out])
    assert "give --results or" in _error(capsys, ["report", "--tables", str(results / "tables"), "--out", out])
    (results / "tables" / "metrics_all.csv").unlink()
    assert "metrics_all.csv: file not found" in _error(capsys, ["report", "--results", str(results), "--out", out])
    assert not Path(out).exists()


def test_preprocessing_qc_pictures_are_embedded(tmp_path):
    from diffreg.report.html import qc_figures
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    d = tmp_path / "preprocessed" / "sub-001"
    d.mkdir(parents=True)
    plt.imsave(d / "sub-001_qc.png", [[0.0, 1.0], [1.0, 0.0]])
    (d / "sub-001_be.nii.gz").write_bytes(b"")
    figs = qc_figures([tmp_path / "preprocessed"])
    assert [f["heading"] for f in figs] == ["Preprocessing QC (sub-001)"]
    import base64
    assert base64.b64decode(figs[0]["png_b64"]) == (d / "sub-001_qc.png").read_bytes()


SOFTWARE_YML = """# software each process used, from the run.json of its tasks (distinct versions joined)
PREPROCESS:
  antspyx: "0.4.2"
  diffreg: "0.3.0"
  diffreg_commit: "0123456789abcdef0123456789abcdef01234567"
  python: "3.11.9"
TRAIN:
  diffreg: "0.3.0"
  python: "3.11.9"
  torch: "2.3.1, 2.4.0"
TABULATE: not recorded
Workflow:
  Nextflow: "24.10.8"
"""


def test_software_versions_per_process_table(tmp_path):
    from diffreg.report.provenance import software_versions
    path = tmp_path / "software_versions.yml"
    path.write_text(SOFTWARE_YML)
    table = software_versions(path)
    # the fixed columns first (the commit cut to 12 digits), then the others by name
    assert table["columns"] == ["diffreg", "diffreg_commit", "python", "torch", "antspyx", "Nextflow"]
    rows = {r["process"]: r for r in table["rows"]}
    assert list(rows) == ["PREPROCESS", "TRAIN", "TABULATE", "Workflow"]
    assert rows["PREPROCESS"]["values"] == ["0.3.0", "0123456789ab", "3.11.9", "–", "0.4.2", "–"]
    assert rows["TRAIN"]["values"][3] == "2.3.1, 2.4.0"
    assert rows["TABULATE"] == {"process": "TABULATE", "note": "not recorded", "values": []}
    assert rows["Workflow"]["values"] == ["–"] * 5 + ["24.10.8"]
    assert software_versions(tmp_path / "absent.yml") == {"columns": [], "rows": []}
    path.write_text("a: [unclosed")
    assert software_versions(path) == {"columns": [], "rows": []}


def test_report_shows_software_per_process(tmp_path, results_dir):
    results = Path(shutil.copytree(results_dir, tmp_path / "results"))
    out = tmp_path / "r" / "index.html"
    assert main(["report", "--results", str(results), "--out", str(out)]) == 0
    assert "Software per process" not in out.read_text()     # no YAML: no table
    (results / "pipeline_info" / "software_versions.yml").write_text(SOFTWARE_YML)
    assert main(["report", "--results", str(results), "--out", str(out)]) == 0
    page = out.read_text()
    assert "Software per process (4)" in page and "<td>0123456789ab</td>" in page
    assert '<td>TABULATE</td><td colspan="6">not recorded</td>' in page
    given = tmp_path / "given.yml"
    given.write_text(SOFTWARE_YML.replace("2.3.1, 2.4.0", "9.9.9"))
    assert main(["report", "--results", str(results), "--software-versions", str(given), "--out", str(out)]) == 0
    assert "<td>9.9.9</td>" in out.read_text()


@pytest.mark.parametrize("served", [False, True])
def test_a_task_server_run_shows_no_trace_memory(tmp_path, served):
    """Through the task server the trace's peak_rss is the client's: the summary leaves it out and
    says why; a plain run shows it."""
    from diffreg.report.html import ReportInputs, provenance_context

    info = tmp_path / "pipeline_info"
    info.mkdir()
    (info / "trace_2026-01-01_10-00-00.txt").write_text(
        "task_id\tname\tstatus\trealtime\t%cpu\tpeak_rss\n1\tDIFFREG:TRAIN_MODELS:TRAIN (vxm)\tCOMPLETED\t1m 2s\t1.0%\t20 MB\n")
    (info / "provenance.json").write_text(json.dumps({"params": {"task_server": served}}))
    ctx = provenance_context(ReportInputs(tables=tmp_path, registrations=[], images=[], pipeline_info=info,
                                          provenance=info / "provenance.json"), tmp_path)
    (row,) = ctx["trace_summary"]
    assert row["total"] == "62.0" and ctx["trace_served"] is served
    assert row["rss"] == ("–" if served else "20")

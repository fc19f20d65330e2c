"""End-to-end runs of main.nf: the test profile, -resume and bad input (the stub blocks of every
process: test_fake_paper.py's stub run)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import yaml

from .conftest import PROCESSES, run_nextflow



def test_every_process_ran(test_run):
    _, proc = test_run
    for name in PROCESSES:
        assert re.search(rf"Submitted process > \S*{name}\b", proc.stdout), f"{name} never ran"
    assert "report at" in proc.stdout


def test_metrics_in_range(test_run):
    cwd, _ = test_run
    metrics = pd.read_csv(cwd / "results/tables/metrics_all.csv")
    assert list(metrics.columns) == ["experiment", "artifact", "method", "dataset", "pair", "label", "metric", "value"]
    families = {m.split("-")[0] for m in metrics.method}  # baselines are named <tool>-<preset>
    assert {"voxelmorph", "syn", "niftyreg"} <= families
    dice = metrics[(metrics.metric == "dice") & (metrics.label == "mean")]
    before = metrics[(metrics.metric == "dice_before") & (metrics.label == "mean")]
    assert dice.value.between(0, 1).all() and len(dice) >= 3 * 2
    # the classical baselines register better than the affine alignment alone, on average; the
    # briefly trained VoxelMorph (10 subjects, 600 steps) must at least not undo it
    for method, group in dice.groupby("method"):
        start = before[before.method == method].value.mean()
        margin = 0.0 if method != "voxelmorph" else -0.05
        assert group.value.mean() > start + margin, f"{method}: Dice {group.value.mean():.3f} vs before {start:.3f}"
    syn = dice[dice.method.str.startswith("syn")].value.mean()
    assert syn > before.value.mean() + 0.1
    folds = metrics[metrics.metric == "pct_jac_nonpos"].value
    assert folds.between(0, 100).all()
    sdlogj = metrics[metrics.metric == "sdlogj"].value
    assert (sdlogj >= 0).all() and (sdlogj < 2).all()
    runtime = metrics[metrics.metric == "runtime_s"].value
    assert (runtime > 0).all()


def test_report_is_self_contained(test_run):
    cwd, _ = test_run
    html = (cwd / "results/report/index.html").read_text()
    assert "data:image/png;base64," in html
    assert not re.search(r'(src|href)="https?://', html)
    table = pd.read_csv(cwd / "results/tables/table.csv")
    rows = " ".join(map(str, table["method"]))
    for method in ("voxelmorph", "syn-test", "niftyreg-test"):
        assert method in html and method in rows


def test_dgir_artifacts(test_run):
    """-profile test runs a few DGIR settings: their rows carry our numbers beside the paper's,
    rows outside the profile or needing 3D data say so, and every artifact reaches the report."""
    cwd, _ = test_run
    out = cwd / "results/experiments/dgir"
    index = json.loads((out / "index.json").read_text())
    arts = [s["artifact"] for s in index["sections"]]
    assert arts == ["table1", "table2_be_nbe", "table2_be_be", "fig1", "fig2", "fig4", "fig5a", "fig5b", "fig6"]
    table1 = pd.read_csv(out / "table1.csv")
    ran = table1[table1["status"] == "run"].set_index("method")
    assert {"lncc", "diffusion_lncc"} <= set(ran.index)
    assert ran["dice_mean"].between(0, 1).all()
    assert ran.loc["diffusion_lncc", "paper_dice"] == 0.9611   # the paper's column, from experiments/dgir.yaml
    table2 = (out / "table2_be_nbe.md").read_text()
    assert "needs 3D data" in table2   # the test profile is 2D
    sweep = pd.read_csv(out / "fig5b.csv")
    assert list(sweep["value"]) == [50, 600] and (sweep["n"] > 0).all()
    for png in ("fig1.png", "fig2.png", "fig4.png", "fig5a.png", "fig5b.png"):
        assert (out / png).stat().st_size > 1000, png
    claims = {c["artifact"]: c for c in json.loads((out / "claims.json").read_text())}
    assert claims["table1"]["holds"] in (True, False, None) and claims["table1"]["evidence"]
    assert claims["table2_be_nbe"]["holds"] is None   # nothing 3D ran
    html = (cwd / "results/report/index.html").read_text()
    assert "Table 1" in html and "Claim:" in html and "Fig. 5b" in html


def test_run_manifests(test_run):
    cwd, _ = test_run
    manifests = list((cwd / "results/registrations").glob("*/run.json"))
    assert len(manifests) >= 6
    for path in manifests:
        run = json.loads(path.read_text())
        assert run["register_time_s"] > 0 and run["wall_time_s"] >= run["register_time_s"]
        assert run["threads"] >= 1 and run["versions"]["torch"]
        assert run["pair"] in path.parent.name
    # the main path's training (the papers train VoxelMorph rows of their own too)
    regs = pd.read_csv(cwd / "results/pipeline_info/plan/registrations.csv")
    run = regs.loc[(regs["experiment"] == "main") & (regs["method"] == "voxelmorph"), "run"].iloc[0]
    train = json.loads((cwd / "results/models" / run / "run.json").read_text())
    assert train["iterations"] == 600 and train["loss_last_10pct"] < train["loss_first_10pct"]
    infos = [p.name for p in (cwd / "results/pipeline_info").iterdir()]
    for prefix in ("report_", "timeline_", "trace_", "dag_"):
        assert any(n.startswith(prefix) for n in infos), f"pipeline_info lacks {prefix}*"
    # the software of each process, from its tasks' run.json (one environment: one version each)
    versions = yaml.safe_load((cwd / "results/pipeline_info/software_versions.yml").read_text())
    assert versions["TRAIN"]["torch"] == train["versions"]["torch"]
    assert versions["TRAIN"]["diffreg_commit"] == train["git_commit"]
    assert {"TOY_DATA", "PREPROCESS", "PLAN", "TRAIN", "TABULATE"} <= set(versions) and versions["Workflow"]["Nextflow"]
    assert "Software per process" in (cwd / "results/report/index.html").read_text()


def test_resume_caches_everything(test_run):
    """A -resume with nothing changed takes every task from the cache, the report included (its
    provenance holds only what decides the results; runs.tsv records each launch)."""
    cwd, _ = test_run
    report = cwd / "results/report/index.html"
    before = report.read_text()
    proc = run_nextflow(cwd, "-profile", "test", "--outdir", "results", "-resume")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert not re.findall(r"Submitted process > (\S+)", proc.stdout), proc.stdout
    assert len(re.findall(r"Cached process >", proc.stdout)) >= len(PROCESSES)
    assert report.read_text() == before
    runs = (cwd / "results/pipeline_info/runs.tsv").read_text().splitlines()
    run_name = re.search(r"Launching `[^`]+` \[([a-z_]+)\]", proc.stdout).group(1)
    assert len(runs) >= 3 and run_name in runs[-1] and "\ttrue\t" in runs[-1]


def _fails_before_any_task(tmp_path: Path, *args: str) -> str:
    proc = run_nextflow(tmp_path, "-profile", "test", "--outdir", "results", *args)
    assert proc.returncode != 0
    assert "Submitted process" not in proc.stdout
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())
    return proc.stdout + proc.stderr


def test_unknown_parameter_stops(tmp_path):
    out = _fails_before_any_task(tmp_path, "--trian_iterations", "5")
    assert "Unknown parameter(s): --trian_iterations" in out


def test_missing_input_stops(tmp_path):
    out = _fails_before_any_task(tmp_path, "--input", str(tmp_path / "nope.csv"))
    assert "file not found" in out and "nope.csv" in out


def test_malformed_samplesheet_stops(tmp_path):
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("subject,split,labels,image_be\nsub-1,train,missing_labels.nii.gz,missing.nii.gz\n")
    out = _fails_before_any_task(tmp_path, "--input", str(sheet))
    assert "Samplesheet" in out and "missing" in out


def test_help_lists_every_parameter(tmp_path):
    schema = json.loads((Path(__file__).resolve().parents[2] / "nextflow_schema.json").read_text())
    proc = run_nextflow(tmp_path, "--help")
    assert proc.returncode == 0
    for group in schema["$defs"].values():
        for name in group["properties"]:
            assert f"--{name}" in proc.stdout


def test_own_samplesheet_with_any_file_names(tmp_path):
    """A user's layout (one folder per subject, arbitrary names with spaces and non-ASCII
    characters, relative paths) runs end to end."""
    import csv
    import shutil
    import subprocess

    root = Path(__file__).resolve().parents[2]
    toy = tmp_path / "toy"
    subprocess.run([str(root / "bin/diffreg"), "toy-data", "--outdir", str(toy), "--n-subjects", "4",
                    "--size", "48", "--ndim", "2", "--seed", "3"], check=True, capture_output=True)
    rows = list(csv.DictReader(open(toy / "samplesheet.csv")))
    own = tmp_path / "my data"
    sheet = tmp_path / "my sheet 1 é.csv"
    with open(sheet, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["subject", "split", "labels", "image_t1", "image_t1brain"])
        for r in rows:
            d = own / r["subject"]
            d.mkdir(parents=True)
            shutil.copy(toy / r["image_nbe"], d / "head scan ü.nii.gz")
            shutil.copy(toy / r["image_be"], d / "brain.nii.gz")
            shutil.copy(toy / r["labels"], d / "seg (labels).nii.gz")
            rel = f"my data/{r['subject']}"
            w.writerow([r["subject"], r["split"], f"{rel}/seg (labels).nii.gz", f"{rel}/head scan ü.nii.gz",
                        f"{rel}/brain.nii.gz"])
    proc = run_nextflow(tmp_path, "-profile", "test", "--outdir", "results", "--input", str(sheet),
                        "--label_names", str(toy / "labels.json"), "--reference_modality", "t1",
                        "--moving_modality", "t1brain", "--fixed_modality", "t1brain",
                        "--methods", "none", "--baselines", "syn", "--papers", "none")
    assert proc.returncode == 0, proc.stdout[-3000:]
    metrics = pd.read_csv(tmp_path / "results/tables/metrics_all.csv")
    dice = metrics[(metrics.metric == "dice") & (metrics.label == "mean")]
    assert len(dice) >= 1 and dice.value.between(0.3, 1).all()
    assert "grey matter" in set(metrics.label)
    assert (tmp_path / "results/preprocessed" / rows[0]["subject"] / f"{rows[0]['subject']}_t1brain.nii.gz").exists()


def test_test_profile_plans_every_paper_and_the_scorecard_counts_its_artifacts(test_run):
    """`make demo` (-profile test) regenerates all five papers; the report's scorecard row of each
    counts the artifacts on disk (index.json) and the verdicts of its claims.json."""
    cwd, _ = test_run
    res = cwd / "results"
    planned = set(pd.read_csv(res / "pipeline_info/plan/experiments.csv")["experiment"])
    papers = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "experiments").glob("*.yaml")
                    if p.stem != "baselines")
    assert set(papers) | {"main"} == planned
    page = (res / "report/index.html").read_text()
    for paper in papers:
        index = json.loads((res / "experiments" / paper / "index.json").read_text())
        verdicts = [c["verdict"] for c in json.loads((res / "experiments" / paper / "claims.json").read_text())]
        made = sum(bool(s["regenerated"]) for s in index["sections"])
        name = re.escape(index["experiment"].replace("&", "&amp;"))
        row = re.search(rf'<tr><td><a href="#paper-\d+">{name}</a></td><td>(\d+) / (\d+)</td><td>\d+</td>'
                        r'<td>(\d+)</td><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td>', page)
        assert row, paper
        assert (int(row[1]), int(row[2])) == (made, len(index["sections"])), paper
        assert [int(row[i]) for i in range(3, 7)] == [verdicts.count(v) for v in
                                                       ("holds", "consistent", "does not hold", "not testable")]
        assert made > 0, f"{paper}: nothing regenerated"

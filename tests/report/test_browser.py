"""The report in a real browser: headless Chromium opens index.html and the test fails on a
console error, a broken image, an empty table, a dead internal link, or a page wider than a
1,000 px window (wide tables must scroll inside the page). A screenshot is saved beside the report.

By default the report is built here, in seconds, from a small results folder made in code (the
unit tests' registrations and toy experiment, plus a trace and provenance.json). Set
DIFFREG_REPORT=path/to/results/report/index.html to check a report of a real run as well, and
DIFFREG_SCREENSHOT_TO=docs/img/report.png to keep its screenshot (how the README's is made).
"""
from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd
import pytest

from diffreg.cli import main
from diffreg.metrics_table import COLUMNS

from .cdp import Browser, find_chromium

WIDTH = 1000
CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make setup installs Debian's "
                                                          "`chromium` where it runs as root with apt-get)")

TRACE = ("task_id\thash\tnative_id\tname\tstatus\texit\tsubmit\tduration\trealtime\t%cpu\tpeak_rss\tpeak_vmem\n"
         "1\tab/cdef01\t11\tDIFFREG:PREPARE_DATA:TOY_DATA (n=4)\tCOMPLETED\t0\t2026-01-01 10:00:00.000\t3.5s\t3.1s\t"
         "98.0%\t600 MB\t3 GB\n"
         "2\tab/cdef02\t12\tDIFFREG:TRAIN_MODELS:TRAIN (vxm)\tCOMPLETED\t0\t2026-01-01 10:00:04.000\t1m 5s\t"
         "1m 2s\t180.0%\t1.2 GB\t5 GB\n")


def _experiment(root: Path) -> Path:
    """The unit tests' toy experiment (tests/unit/test_experiment_artifacts.py), with real PNGs."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from diffreg.report.experiment_rows import USES_COLUMNS
    from tests.unit import test_experiment_artifacts as te
    from tests.unit.test_evaluate import constant_field, make_registration

    root.mkdir(parents=True)
    (root / "dgir.yaml").write_text(te.YAML)
    pd.DataFrame(te.USES, columns=USES_COLUMNS).to_csv(root / "uses.csv", index=False)
    pd.DataFrame(te.metrics_rows(), columns=COLUMNS).to_csv(root / "metrics.csv", index=False)
    figs = root / "figures"
    for fid in (te.FIG1, te.FIG2):
        (figs / fid).mkdir(parents=True)
    pd.DataFrame({"measure": ["MSE", "LNCC", "Diffusion (cosine)"], "error_px": [5.0, 2.0, 0.0]}).to_csv(
        figs / te.FIG1 / "fig1_heatmaps.csv", index=False)
    plt.imsave(figs / te.FIG1 / "fig1_heatmaps.png", [[0.0, 1.0], [1.0, 0.0]])
    pd.DataFrame({"keypoint": [0, 0, 1, 1], "variant": ["cosine", "lncc"] * 2, "error_px": [1.0, 1.0, 1.0, 3.0]}
                 ).to_csv(figs / te.FIG2 / "fig2_correspondences.csv", index=False)
    pd.DataFrame([(te.FIG1, "dgir", "fig1", "dgir.similarity_heatmaps"), (te.FIG2, "dgir", "fig2", "dgir.correspondences")],
                 columns=["figure", "experiment", "artifact", "function"]).to_csv(root / "figures.csv", index=False)
    for run, pair in (("r_lncc", "p1"), ("r_lncc", "p2"), ("r_ours", "p2"), ("r_a", "p1")):
        make_registration(root, run, pair, constant_field(2.0 if run == "r_ours" else 0.0), moving_shift=2)
    out = root / "out" / "toy"
    assert main(["experiment-artifacts", "--experiment", str(root / "dgir.yaml"), "--plan", str(root / "uses.csv"),
                 "--metrics", str(root / "metrics.csv"), "--registrations", str(root / "registrations"),
                 "--images-dir", str(root / "images"), "--figures", str(figs / te.FIG1), str(figs / te.FIG2),
                 "--figures-csv", str(root / "figures.csv"), "--name", "dgir", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def synthetic_report(tmp_path_factory) -> Path:
    from tests.unit.test_report import make_results
    base = tmp_path_factory.mktemp("browser")
    results = make_results(base / "results")
    shutil.copytree(_experiment(base / "exp"), results / "experiments" / "toy")
    info = results / "pipeline_info"
    (info / "trace_2026-01-01_10-00-00.txt").write_text(TRACE)
    (info / "provenance.json").write_text(json.dumps({
        "command_line": "nextflow run main.nf -profile test --outdir results", "profile": "test",
        "nextflow": "24.10.8", "params": {"outdir": "results", "seed": 0, "methods": "voxelmorph"},
        "skipped": {"camus": [["patient0008", "no 2CH files"], ["patient0003_old", "not patientNNNN"]],
                    "acdc": [], "mine": None}}))
    out = results / "report" / "index.html"
    assert main(["report", "--results", str(results), "--out", str(out)]) == 0
    return out


CHECKS = r"""
(() => {
  const problems = [];
  for (const img of document.images) {
    if (!img.complete || img.naturalWidth === 0) problems.push("broken image: " + (img.alt || img.src.slice(0, 60)));
  }
  for (const t of document.querySelectorAll("table")) {
    if (t.querySelectorAll("td").length === 0)
      problems.push("empty table: " + (t.caption ? t.caption.textContent : t.outerHTML.slice(0, 80)));
  }
  const files = [];
  for (const a of document.querySelectorAll("a[href]")) {
    const h = a.getAttribute("href");
    if (h.startsWith("#")) {
      if (!document.getElementById(decodeURIComponent(h.slice(1)))) problems.push("dead anchor: " + h);
    } else files.push(a.href);
  }
  // at 1000 px nothing may stick out of the page: a wide table scrolls inside its own box
  const page = document.documentElement;
  if (page.scrollWidth > window.innerWidth + 1) problems.push("page wider than the window: " + page.scrollWidth);
  for (const t of document.querySelectorAll("table")) {
    let el = t.parentElement, clipped = false;
    while (el && el !== document.body) {
      const o = getComputedStyle(el).overflowX;
      if (o === "auto" || o === "scroll") { clipped = true; break; }
      el = el.parentElement;
    }
    if (!clipped && t.getBoundingClientRect().right > window.innerWidth + 1)
      problems.push("table cut off: " + (t.caption ? t.caption.textContent : "(no caption)"));
  }
  return {problems, files, tables: document.querySelectorAll("table").length,
          images: document.images.length, height: page.scrollHeight};
})()
"""


def check_in_browser(html: Path, shot: Path) -> dict:
    browser = Browser(CHROMIUM, shot.parent / "chromium-profile", WIDTH, 800)
    try:
        for domain in ("Page", "Runtime", "Log"):
            browser.call(f"{domain}.enable")
        browser.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=800, deviceScaleFactor=1, mobile=False)
        browser.call("Page.navigate", url=html.resolve().as_uri())
        browser.wait_for("Page.loadEventFired")
        found = browser.evaluate(CHECKS)
        # the top of the page as a reader sees it at 1000 px: the README's screenshot
        png = browser.call("Page.captureScreenshot", format="png",
                           clip={"x": 0, "y": 0, "width": WIDTH, "height": min(1400, found["height"]), "scale": 1},
                           captureBeyondViewport=True)
        shot.write_bytes(base64.b64decode(png["data"]))
        browser.call("Runtime.evaluate", expression="0")   # collects events still in flight
        errors = [e for e in browser.events
                  if e["method"] == "Runtime.exceptionThrown"
                  or (e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
                  or (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
    finally:
        browser.close()
    problems = list(found["problems"]) + [f"console: {json.dumps(e['params'])[:300]}" for e in errors]
    for url in found["files"]:
        u = urlparse(url)
        if u.scheme == "file" and not Path(unquote(u.path)).exists():
            problems.append(f"dead link: {unquote(u.path)}")
        elif u.scheme not in ("file", "data"):
            problems.append(f"link leaves the results folder: {url}")
    return {**found, "problems": problems}


def test_synthetic_report_in_chromium(synthetic_report, tmp_path):
    shot = tmp_path / "report.png"
    found = check_in_browser(synthetic_report, shot)
    assert found["problems"] == []
    # the qualitative figure, the Dice box plot and the toy paper's figures; every table has rows
    assert found["images"] >= 7 and found["tables"] >= 10
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = synthetic_report.read_text()
    assert "How claims are judged" in page and "Wilcoxon signed-rank" in page
    assert "nextflow run main.nf -profile test --outdir results" in page and "24.10.8" in page
    assert "TRAIN" in page and "62.0" in page      # realtime 1m 2s from the trace
    # what the adapters left out, per dataset (skipped.csv beside each user samplesheet)
    assert "<td>camus</td><td>2</td><td>patient0008: no 2CH files; patient0003_old: not patientNNNN</td>" in page
    assert "<td>acdc</td><td>0</td><td>nothing skipped</td>" in page
    assert "<td>mine</td><td>–</td><td>no skipped.csv beside the samplesheet</td>" in page


@pytest.mark.skipif(not os.environ.get("DIFFREG_REPORT"), reason="DIFFREG_REPORT (a run's index.html) not given")
def test_report_of_a_run_in_chromium(tmp_path):
    html = Path(os.environ["DIFFREG_REPORT"])
    shot = tmp_path / "report.png"
    found = check_in_browser(html, shot)
    if os.environ.get("DIFFREG_SCREENSHOT_TO"):
        dest = Path(os.environ["DIFFREG_SCREENSHOT_TO"])
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, dest)
    assert found["problems"] == []

"""`diffreg experiment-artifacts` and the report's paper sections, on a tiny experiment made in code."""
from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest

from diffreg.cli import main
from diffreg.metrics_table import COLUMNS
from diffreg.report.claim_checks import claim_values
from diffreg.report.experiment_rows import USES_COLUMNS

from .test_evaluate import constant_field, make_registration

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

YAML = """\
paper: {name: "Toy paper (2025)"}
method: dgir
tasks:
  t2d: {ndim: 2, dataset: toy, train: {moving: t2, fixed: nbe}}
artifacts:
  table1:
    kind: table
    title: "Table 1: toy"
    tasks: {toy: t2d}
    runs: [{name: lncc, loss: lncc}, {name: vgg_lncc}, {name: ours, t: 50}, {name: seg, status: not_implemented}]
    claim: {text: "ours has the best Dice", check: {metric: dice, best: ours, among: all}}
    columns: [dice]
    rows:
      lncc: {dice: 0.7944}
      vgg_lncc: {dice: 0.8674}
      ours: {dice: 0.9611}
      seg: {dice: 0.9422}
  table2:
    kind: table
    title: "Table 2: toy"
    tasks: {toy: t2d}
    runs: [{name: a}, {name: b}]
    claim: {text: "b is on par with a", check: {metric: dice, run: b, within: 0.03, of: a}}
    rows:
      a: {dice: 0.8156}
      b: {dice: 0.8079}
  fig1:
    kind: figure
    title: "Fig. 1: heatmaps"
    function: dgir.similarity_heatmaps
    tasks: {toy: t2d}
    settings: {block: 29, feature_checkpoint: {stage: feats}}
    claim: {text: "diffusion peaks right", check: {file: fig1_heatmaps.csv, metric: error_px, best: "Diffusion (cosine)"}}
  fig2:
    kind: figure
    title: "Fig. 2: correspondences"
    function: dgir.correspondences
    tasks: {toy: t2d}
    claim: {text: "lncc beats cosine", check: {file: fig2_correspondences.csv, metric: error_px, compare: [lncc, cosine]}}
  fig4:
    kind: figure
    title: "Fig. 4: qualitative"
    from: table1
    runs: [lncc, vgg_lncc, ours]
  fig5a:
    kind: figure
    title: "Fig. 5a: block sweep"
    tasks: {toy: t2d}
    sweep: {param: block, fixed: {t: 60}}
    claim: {text: "mid block best", check: {metric: dice, argmax_in: [8, 9, 10, 11]}}
  fig5b:
    kind: figure
    title: "Fig. 5b: t sweep"
    tasks: {toy: t2d}
    sweep: {param: t, fixed: {block: 29}}
    claim: {text: "t in [10, 150] best", check: {metric: dice, argmax_in_range: [10, 150]}}
  fig6:
    kind: figure
    title: "Fig. 6: from two tables"
    from: [table1, table2]
    runs: [lncc, a]
  fig9:
    kind: figure
    title: "Fig. 9: never made"
    from: table1
    runs: [seg]
losses:
  lncc: {loss: lncc}
stages:
  feats: {kind: adm_natural_images}
"""

FIG1, FIG2 = "dgir.similarity_heatmaps-aaaa1111", "dgir.correspondences-bbbb2222"
USES = [  # experiment,artifact,row,label,status,note,param,value (label: the registration set)
    ("dgir", "table1", "lncc", "r_lncc", "run", "", "", ""),
    ("dgir", "table1", "vgg_lncc", "", "needs_weights", "needs weights: give --vgg", "", ""),
    ("dgir", "table1", "ours", "r_ours", "run", "", "", ""),
    ("dgir", "table1", "seg", "", "not_implemented", "not part of diffreg", "", ""),
    ("dgir", "table2", "a", "r_a", "run", "", "", ""),
    ("dgir", "table2", "b", "r_ours", "run", "", "", ""),          # one registration set shared by two artifacts
    ("dgir", "fig1", "fig1", FIG1, "run", "", "", ""),              # fig2: found through figures.csv
    ("dgir", "fig6", "lncc (t1)", "r_lncc", "run", "", "", ""),     # a figure's own rows, one group per test set
    ("dgir", "fig6", "a (t2)", "r_a", "run", "", "", ""),
    ("dgir", "fig5a", "block_8", "s8", "run", "", "block", "8"),
    ("dgir", "fig5a", "block_11", "s11", "run", "", "block", "11"),
    ("dgir", "fig5a", "block_29", "s29", "run", "", "block", "29"),
    ("dgir", "fig5b", "t_50", "t50", "run", "", "t", "50"),
    ("dgir", "fig5b", "t_600", "t600", "run", "", "t", "600"),
    ("dgir", "fig5b", "t_999", "", "skipped", "needs 3D data", "t", "999"),
    ("other", "table9", "x", "r_x", "run", "", "", ""),            # another experiment of the plan
]

# run -> per-pair mean Dice: r_lncc 0.7 ± 0.141, r_ours 0.9 ± 0.141, r_a 0.88;
# block 11 best (0.75); t 600 best (0.8), outside [10, 150]
DICE = {"r_lncc": (0.6, 0.8), "r_ours": (0.85, 0.95), "r_a": (0.87, 0.89),
        "s8": (0.7, 0.7), "s11": (0.74, 0.76), "s29": (0.72, 0.72), "t50": (0.6, 0.6), "t600": (0.8, 0.8)}


def metrics_rows():
    rows = []
    for run, vals in DICE.items():
        for pair, v in zip(("p1", "p2"), vals):
            rows += [("dgir", "main", run, "toy", pair, "CSF", "dice", v), ("dgir", "main", run, "toy", pair, "mean", "dice", v),
                     ("dgir", "main", run, "toy", pair, "mean", "dice_before", 0.5),
                     ("dgir", "main", run, "toy", pair, "all", "pct_jac_nonpos", 0.0)]
    # the same registration set evaluated for another experiment: not this one's numbers
    rows += [("other", "main", "r_lncc", "toy", "p3", "mean", "dice", 0.0)]
    return rows


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("exp")
    (root / "dgir.yaml").write_text(YAML)
    pd.DataFrame(USES, columns=USES_COLUMNS).to_csv(root / "uses.csv", index=False)
    pd.DataFrame(metrics_rows(), columns=COLUMNS).to_csv(root / "metrics.csv", index=False)
    figs = root / "figures"
    for fid in (FIG1, FIG2):
        (figs / fid).mkdir(parents=True)
    pd.DataFrame({"measure": ["MSE", "LNCC", "Diffusion (cosine)"], "error_px": [5.0, 2.0, 0.0]}).to_csv(
        figs / FIG1 / "fig1_heatmaps.csv", index=False)
    pd.DataFrame({"keypoint": [0, 0, 1, 1], "variant": ["cosine", "lncc"] * 2, "error_px": [1.0, 1.0, 1.0, 3.0]}
                 ).to_csv(figs / FIG2 / "fig2_correspondences.csv", index=False)
    (figs / FIG1 / "fig1_heatmaps.png").write_bytes(PNG_MAGIC + b"fig1")
    pd.DataFrame([(FIG1, "dgir", "fig1", "dgir.similarity_heatmaps"), (FIG2, "dgir", "fig2", "dgir.correspondences")],
                 columns=["figure", "experiment", "artifact", "function"]).to_csv(root / "figures.csv", index=False)
    # fig4: r_lncc registered p1 and p2, r_ours only p2 -> the pair both registered is p2
    for run, pair in (("r_lncc", "p1"), ("r_lncc", "p2"), ("r_ours", "p2"), ("r_a", "p1")):
        make_registration(root, run, pair, constant_field(2.0 if run == "r_ours" else 0.0), moving_shift=2)
    out = root / "out"
    assert main(["experiment-artifacts", "--experiment", str(root / "dgir.yaml"), "--plan", str(root / "uses.csv"),
                 "--metrics", str(root / "metrics.csv"), "--registrations", str(root / "registrations"),
                 "--images-dir", str(root / "images"), "--figures", str(figs / FIG1), str(figs / FIG2),
                 "--figures-csv", str(root / "figures.csv"), "--name", "dgir", "--out", str(out)]) == 0
    return {"root": root, "out": out}


def md_table(text: str) -> tuple[list[str], dict[str, list[str]]]:
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    cols = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = cells
    return cols, rows


def test_table_beside_paper_with_statuses(experiment):
    out = experiment["out"]
    cols, rows = md_table((out / "table1.md").read_text())
    d, dp = cols.index("Dice"), cols.index("Dice (paper)")
    assert dp == d + 1
    # the run renamed to its row; mean ± sample sd over the two pairs (sd of 0.6, 0.8 = 0.1414)
    assert rows["lncc"][d] == "0.700 ± 0.141" and rows["lncc"][dp] == "0.794"
    assert rows["ours"][d] == "0.900 ± 0.071" and rows["ours"][dp] == "0.961"
    assert rows["vgg_lncc"][d] == "needs weights" and rows["vgg_lncc"][dp] == "0.867"
    assert rows["seg"][d] == "not implemented" and rows["seg"][dp] == "0.942"
    assert "r_lncc" not in rows and "not run" not in (out / "table1.md").read_text()
    # the YAML's row order, initial (before registration) first
    assert list(rows) == ["initial", "lncc", "vgg_lncc", "ours", "seg"]
    t = pd.read_csv(out / "table1.csv").set_index("method")
    assert t.loc["ours", "dice_mean"] == pytest.approx(0.9) and t.loc["ours", "paper_dice"] == pytest.approx(0.9611)
    assert t.loc["ours", "label"] == "r_ours" and t.loc["vgg_lncc", "status"] == "needs_weights"
    assert t.loc["vgg_lncc", "n"] == 0 and math.isnan(t.loc["vgg_lncc", "dice_mean"])
    assert "needs weights: give --vgg" in (out / "table1.html").read_text()
    # a run shared by two artifacts appears in both under each one's row name
    _, rows2 = md_table((out / "table2.md").read_text())
    assert rows2["b"][2] == "0.900 ± 0.071" and rows2["a"][2] == "0.880 ± 0.014"


def test_claims(experiment):
    """Two pairs per row: no ordering can be significant (smallest exact p = 0.5), so agreeing
    claims are only consistent; a reversal does not hold; one figure point is not testable."""
    out = experiment["out"]
    claims = {c["artifact"]: c for c in json.loads((out / "claims.json").read_text())}
    verdicts = {k: c["verdict"] for k, c in claims.items()}
    assert verdicts == {"table1": "consistent", "table2": "consistent", "fig1": "not testable",
                        "fig2": "does not hold", "fig5a": "consistent", "fig5b": "does not hold"}
    assert claims["table1"]["holds"] is None and claims["fig5b"]["holds"] is False
    # ours - lncc = 0.25, 0.15 per pair: mean 0.2, exact p = 2/4
    assert "ours − lncc = 0.200" in claims["table1"]["evidence"] and "p = 0.500" in claims["table1"]["evidence"]
    assert "smallest attainable p is 0.500" in claims["table1"]["evidence"]
    assert "b − a = 0.020" in claims["table2"]["evidence"]    # 0.90 - 0.88, interval beyond ±0.03
    assert "n = 1" in claims["fig1"]["evidence"]              # one query point per measure
    assert "cosine is ahead" in claims["fig2"]["evidence"]
    assert "best allowed value 11" in claims["fig5a"]["evidence"]
    assert "600 is ahead" in claims["fig5b"]["evidence"]
    # the numbers behind each verdict, and the per-pair values the report judges them on again
    t = pd.read_csv(out / "table1.claim.csv").set_index("row")
    assert t.loc["initial", "mean"] == pytest.approx(0.5) and t.loc["ours", "mean"] == pytest.approx(0.9)
    assert t.loc["lncc", "diff"] == pytest.approx(0.2) and t.loc["lncc", "p"] == pytest.approx(0.5)
    v = pd.read_csv(out / "fig5a.values.csv")
    assert sorted(set(v["row"].astype(str))) == ["11", "29", "8", "initial"]
    assert set(claims) == {"table1", "table2", "fig1", "fig2", "fig5a", "fig5b"}


def vals(metric="dice", **rows) -> pd.DataFrame:
    """Long values: rows given as lists over pairs p0, p1, ..."""
    return pd.DataFrame([(r, f"p{i}", metric, v) for r, vs in rows.items() for i, v in enumerate(vs)],
                        columns=["row", "pair", "metric", "value"])


def test_claim_checks_both_ways():
    from diffreg.report.claims import judge
    up = [0.80, 0.82, 0.79, 0.85, 0.81, 0.83, 0.80]          # 7 pairs: smallest exact p 2/128
    low = [v - 0.1 - 0.01 * i for i, v in enumerate(up)]
    best = {"metric": "dice", "best": "ours", "among": "all"}
    assert judge(best, vals(ours=up, lncc=low)).verdict == "holds"
    assert judge(best, vals(ours=low, lncc=up)).verdict == "does not hold"
    assert judge({**best, "among": ["lncc"]}, vals(ours=up, lncc=low, mind=[0.99] * 7)).verdict == "holds"
    assert judge(best, vals(ours=up, lncc=low, mind=[0.99] * 7)).verdict == "does not hold"
    v = judge({**best, "best": "vgg"}, vals(ours=up))
    assert v.verdict == "not testable" and v.reason == "dice: vgg did not run"
    within = {"metric": "dice", "run": "ours", "within": 0.03, "of": "mind"}
    assert judge(within, vals(ours=up, mind=[u + 0.001 * (-1) ** i for i, u in enumerate(up)])).verdict == "holds"
    assert judge(within, vals(ours=up, mind=low)).verdict == "does not hold"        # 0.13 apart
    assert judge({**within, "of": "dino"}, vals(ours=up)).verdict == "not testable"
    sweep = vals(**{"0": low, "10": up, "150": [u + 0.05 for u in up], "300": up})
    assert judge({"argmax_in_range": [10, 150]}, sweep).verdict == "holds"
    assert judge({"argmax_in_range": [10, 100]}, sweep).verdict == "does not hold"  # 150 ahead of 10
    assert judge({"argmax_in": [0, 300]}, sweep).verdict == "does not hold"
    assert judge({"argmax_in": [150]}, vals(**{"150": up})).verdict == "not testable"   # one value ran
    err = vals("error_px", lncc=[1, 2, 3, 1, 2, 3, 1], cosine=[4, 5, 6, 4, 5, 6, 4])
    v = judge({"file": "c.csv", "metric": "error_px", "compare": ["lncc", "cosine"]}, err)
    assert v.verdict == "holds" and "lncc − cosine = -3.000" in v.reason and "p = 0.016" in v.reason
    assert judge({"file": "c.csv", "metric": "error_px", "compare": ["cosine", "lncc"]}, err).verdict == "does not hold"


def test_missing_figure_files_are_not_testable(tmp_path):
    values, why = claim_values({"file": "absent.csv", "compare": ["cosine", "lncc"]}, "file", None, None, tmp_path)
    assert values is None and why == "absent.csv not found"
    values, why = claim_values({"file": "c.csv", "compare": ["cosine", "lncc"]}, "file", None, None, None)
    assert values is None and "give --figures" in why


def test_ties_show_no_winner_and_groups_of_measures(tmp_path):
    """Equal numbers (e.g. networks that did not move) neither confirm nor refute a claim."""
    from diffreg.report.claims import file_values, judge
    same = [0.5, 0.6, 0.55, 0.52]
    v = judge({"metric": "dice", "best": "ours", "among": "all"}, vals(ours=same, lncc=same))
    assert v.verdict == "not testable" and "tied" in v.reason
    v = judge({"argmax_in": [11]}, vals(**{"11": same, "29": same}))
    assert v.verdict == "not testable" and "tied" in v.reason
    csv = tmp_path / "f.csv"
    pd.DataFrame({"point": [0, 0, 0, 0, 1, 1, 1, 1] * 1, "measure": ["MSE", "LNCC", "Diffusion (cosine)", "Diffusion + LNCC"] * 2,
                  "error_px": [2.0, 5.0, 9.0, 1.0, 3.0, 6.0, 9.0, 1.5]}).to_csv(csv, index=False)
    group = {"file": "f.csv", "best": ["Diffusion (cosine)", "Diffusion + LNCC"]}
    values, _ = file_values(group, csv)
    v = judge(group, values)
    assert v.verdict == "consistent" and "Diffusion + LNCC − MSE = -1.250" in v.reason
    assert judge({"file": "f.csv", "best": "Diffusion (cosine)"}, values).verdict == "does not hold"


def test_sweep_csv_png_and_index(experiment):
    out = experiment["out"]
    s = pd.read_csv(out / "fig5a.csv")
    assert list(s["value"]) == [8, 11, 29] and s["dice_mean"].idxmax() == 1
    assert s.loc[1, "dice_mean"] == pytest.approx(0.75) and s.loc[1, "dice_sd"] == pytest.approx(0.01414, abs=1e-4)
    assert list(s["n"]) == [2, 2, 2]
    b = pd.read_csv(out / "fig5b.csv").set_index("value")
    assert b.loc[999, "n"] == 0 and b.loc[999, "status"] == "skipped"
    for name in ("fig5a.png", "fig5b.png", "fig4.png", "fig6.png", "fig1.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
    assert (out / "fig1.csv").is_file() and (out / "fig2.csv").is_file() and not (out / "fig2.png").exists()
    index = json.loads((out / "index.json").read_text())
    assert index["experiment"] == "Toy paper (2025)"
    secs = {s["artifact"]: s for s in index["sections"]}
    assert [s["artifact"] for s in index["sections"]] == ["table1", "table2", "fig1", "fig2", "fig4", "fig5a",
                                                          "fig5b", "fig6", "fig9"]
    assert secs["table1"]["html"] == "table1.html" and secs["table1"]["png"] is None
    assert secs["fig2"]["png"] is None and "Not made" in secs["fig2"]["caption"]
    assert "pair p2" in secs["fig4"]["caption"] and "rows: 2 of 3" in secs["fig4"]["caption"]
    # each test set on its own pair: r_lncc's first pair and r_a's only one
    assert "pair p1 (t1); p1 (t2); rows: 2 of 2" in secs["fig6"]["caption"]
    assert "best block = 11" in secs["fig5a"]["caption"]
    assert secs["fig9"]["png"] is None and "Nothing to show" in secs["fig9"]["caption"]
    assert secs["fig9"]["claim"] is None
    run = json.loads((out / "run.json").read_text())
    assert run["command"] == "experiment-artifacts" and run["claims_hold"] == 0 and run["claims_fail"] == 2


def test_nothing_ran_still_has_sections(tmp_path):
    (tmp_path / "e.yaml").write_text(YAML)
    uses = [u if u[1] != "table1" or u[4] != "run" else (*u[:3], "", "needs_weights", "", "", "") for u in USES]
    pd.DataFrame(uses, columns=USES_COLUMNS).to_csv(tmp_path / "uses.csv", index=False)
    out = tmp_path / "out"
    assert main(["experiment-artifacts", "--experiment", str(tmp_path / "e.yaml"), "--name", "dgir",
                 "--uses", str(tmp_path / "uses.csv"), "--out", str(out)]) == 0
    cols, rows = md_table((out / "table1.md").read_text())
    assert rows["ours"][cols.index("Dice")] == "needs weights" and rows["ours"][cols.index("Dice (paper)")] == "0.961"
    secs = {s["artifact"]: s for s in json.loads((out / "index.json").read_text())["sections"]}
    assert "Nothing ran" in secs["table1"]["caption"] and secs["table1"]["claim"]["holds"] is None
    assert "Nothing ran" in secs["fig5a"]["caption"] and secs["fig5a"]["claim"]["holds"] is None
    assert secs["fig1"]["claim"]["holds"] is None and "give --figures" in secs["fig1"]["claim"]["evidence"]
    assert "Not made: no folder dgir.similarity_heatmaps-aaaa1111" in secs["fig1"]["caption"]


def test_bad_uses(tmp_path, capsys):
    (tmp_path / "e.yaml").write_text(YAML)
    (tmp_path / "uses.csv").write_text("artifact,row\ntable1,lncc\n")
    argv = ["experiment-artifacts", "--experiment", str(tmp_path / "e.yaml"), "--uses", str(tmp_path / "uses.csv"),
            "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    assert "missing column(s) experiment, label, status" in capsys.readouterr().err
    pd.DataFrame([("e", "table7", "x", "r", "run", "", "", "")], columns=USES_COLUMNS).to_csv(
        tmp_path / "uses.csv", index=False)
    assert main(argv) == 2
    assert "table7 of experiment e not in" in capsys.readouterr().err
    pd.DataFrame([("e", "table1", "x", "", "run", "", "", "")], columns=USES_COLUMNS).to_csv(
        tmp_path / "uses.csv", index=False)
    assert main(argv) == 2
    assert "status 'run' without a label" in capsys.readouterr().err
    (tmp_path / "e.yaml").write_text(YAML.replace("lncc: {loss: lncc}", "lncc: {los: lncc}"))
    assert main(argv) == 2
    assert "losses.lncc.los: unknown setting" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_report_has_paper_sections(experiment, tmp_path):
    from .test_report import make_results
    results = make_results(tmp_path / "results")
    out = tmp_path / "report" / "index.html"
    assert main(["report", "--results", str(results), "--experiments", str(experiment["out"]), "--out", str(out)]) == 0
    page = out.read_text()
    assert '<h2 id="paper-1">Toy paper (2025)</h2>' in page and '<h3 id="paper-1-table1">Table 1: toy</h3>' in page
    assert "Claim: ours has the best Dice — consistent (dice: ahead of every compared row" in page
    assert "Claim: lncc beats cosine — does not hold (error_px: cosine is ahead, not significantly" in page
    assert 'href="' + str(experiment["out"]) + '/table1.values.csv"' not in page   # links are relative
    assert page.count("Statistics of the claim") == 6
    # the scorecard's counts are those of the artifacts on disk: sections with a table row that
    # ran or a drawn PNG, and the verdicts of claims.json
    index = json.loads((experiment["out"] / "index.json").read_text())
    made = sum(bool(s.get("png")) or (s["kind"] == "table" and s["regenerated"]) for s in index["sections"])
    verdicts = [c["verdict"] for c in json.loads((experiment["out"] / "claims.json").read_text())]
    row = re.search(r'<tr><td><a href="#paper-1">Toy paper \(2025\)</a></td><td>(\d+) / (\d+)</td><td>\d+</td>'
                    r'<td>(\d+)</td><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td>', page)
    assert row, "no scorecard row"
    assert (int(row[1]), int(row[2])) == (made, len(index["sections"])) and 0 < made < len(index["sections"])
    assert [int(row[i]) for i in range(3, 7)] == [verdicts.count(v) for v in
                                                   ("holds", "consistent", "does not hold", "not testable")]
    assert sum(map(int, (row[3], row[4], row[5], row[6]))) == len(verdicts)
    assert "<td>needs weights</td>" in page and '<td class="paper">0.961</td>' in page
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    # the 2 figures of the results + fig1, fig4, fig5a, fig5b, fig6
    assert len(images) == 7 and all(base64.b64decode(b)[:8] == PNG_MAGIC for b in images)
    # picked up from <results>/experiments/ without --experiments
    import shutil
    shutil.copytree(experiment["out"], results / "experiments" / "toy")
    assert main(["report", "--results", str(results), "--out", str(out)]) == 0
    assert "Claim: t in [10, 150] best — does not hold" in out.read_text()

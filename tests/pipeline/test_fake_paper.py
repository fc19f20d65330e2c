"""A paper added without touching the pipeline: a tiny method registered by a plugin file and a
two-artifact experiment YAML, both written here, run through `nextflow run main.nf -profile test`."""
from __future__ import annotations

import json
import re
import textwrap

import pandas as pd

from .conftest import PROCESSES, run_nextflow

# A method composed from the package's parts: a network predicting one global translation, the
# pairwise objective (MSE + diffusion regulariser) and the one Trainer.
PLUGIN = '''
from dataclasses import dataclass

import torch
from torch import nn

from diffreg.losses import build_regulariser, build_similarity
from diffreg.methods import METHODS, Method, PairwiseObjective, TrainerConfig
from diffreg.methods.pairs import register_pair


class GlobalShift(nn.Module):
    """(B, 2, *S) -> a constant displacement: a few convolutions, global pooling, a linear head."""
    def __init__(self, ndim):
        super().__init__()
        conv = nn.Conv2d if ndim == 2 else nn.Conv3d
        self.features = nn.Sequential(conv(2, 8, 3, padding=1), nn.ReLU(), conv(8, 8, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(8, ndim)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x):
        shift = self.head(self.features(x).flatten(2).mean(-1))
        return shift.view(*shift.shape, *([1] * (x.ndim - 2))).expand(-1, -1, *x.shape[2:])


@dataclass
class ShiftConfig(TrainerConfig):
    similarity: str = "mse"
    lambda_reg: float = 0.0


@METHODS.register("global_shift")
class ShiftMethod(Method):
    name = "global_shift"
    Config = ShiftConfig

    def __init__(self, ndim, config, device):
        super().__init__(ndim, config, device)
        self.nets["net"] = GlobalShift(ndim).to(device)

    def objective(self, data):
        return PairwiseObjective(build_similarity(self.cfg.similarity), build_regulariser("diffusion"),
                                 self.cfg.lambda_reg, 1, True)

    def register(self, moving, fixed, generator=None):
        return register_pair(self.nets["net"], moving, fixed, 1)
'''

PAPER = '''
paper: {name: "A fake paper (test)"}
method: global_shift
tasks:
  toy_2d:
    ndim: 2
    dataset: toy
    train: {moving: be, fixed: be}
    test: {moving: be, fixed: be}
    labels: [CSF, grey matter, white matter]
    label_unions: {tissue: [2, 3]}
losses:
  mse: {similarity: mse}
artifacts:
  table_a:
    kind: table
    title: "Table A: a learned shift beside SyN"
    tasks: {toy: toy_2d}
    runs:
      - {name: shift, loss: mse, iterations: 30, lr: 0.01}
      - {name: syn, baseline: syn, preset: test}
    columns: [dice]
    rows:
      shift: {dice: 0.70}
      syn: {dice: 0.80}
    claim:
      text: "SyN has the best Dice"
      check: {metric: dice, best: syn, among: all}
  fig_lr:
    kind: figure
    title: "Fig. A: Dice vs learning rate"
    tasks: {toy: toy_2d}
    sweep: {param: lr, fixed: {loss: mse, iterations: 30}}
    values: {test: [0.001, 0.01, 0.05]}
'''


def test_fake_paper_through_the_pipeline(tmp_path):
    plugin = tmp_path / "shift_method.py"
    plugin.write_text(textwrap.dedent(PLUGIN))
    paper = tmp_path / "fake.yaml"
    paper.write_text(textwrap.dedent(PAPER))
    proc = run_nextflow(tmp_path, "-profile", "test", "--outdir", "results", "--papers", str(paper),
                        "--plugins", str(plugin), "--methods", "none", "--baselines", "none", "--max_pairs", "2",
                        "--seeds", "2", "--toy_subjects", "4", "--toy_size", "32")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]

    plan = tmp_path / "results/pipeline_info/plan"
    trainings = pd.read_csv(plan / "trainings.csv")
    # three sweep values, three trainings with their own learning rate, each twice (--seeds 2); the
    # table's row has the settings of the sweep's 0.01 point, so it shares that training
    lrs = sorted(json.loads((plan / "configs" / c).read_text())["lr"] for c in trainings["config"])
    assert lrs == [0.001, 0.001, 0.01, 0.01, 0.05, 0.05]
    assert set(trainings["method"]) == {"global_shift"} and sorted(trainings["seed"]) == [0, 0, 0, 1, 1, 1]
    # replicate k trained with --seed + k (the test profile's seed is 42)
    used = [(r.seed, json.loads((tmp_path / "results/models" / r.run / "run.json").read_text())["seed"])
            for r in trainings.itertuples()]
    assert sorted(used) == [(0, 42)] * 3 + [(1, 43)] * 3

    out = tmp_path / "results/experiments/fake"
    table = pd.read_csv(out / "table_a.csv").set_index("method")
    assert set(table.index) >= {"shift", "syn"}
    assert table.loc["shift", "paper_dice"] == 0.70 and table["dice_mean"].between(0, 1).all()
    assert table.loc["shift", "n_seeds"] == 2 and table.loc["syn", "n_seeds"] == 1
    assert table.loc["shift", "dice_sd_seeds"] >= 0
    sweep = pd.read_csv(out / "fig_lr.csv")
    assert list(sweep["value"]) == [0.001, 0.01, 0.05] and (sweep["n"] == 2).all()
    claims = {c["artifact"]: c for c in json.loads((out / "claims.json").read_text())}
    assert claims["table_a"]["evidence"]
    # the claim is tested over seeds x pairs: SyN's value repeats in each seed's unit
    judged = pd.read_csv(out / "table_a.claim.csv").set_index("row")
    assert judged["n"].max() == 4

    metrics = pd.concat(pd.read_csv(p) for p in (tmp_path / "results/experiments/metrics").glob("*.csv"))
    assert set(metrics["experiment"]) == {"fake"} and set(metrics["dataset"]) == {"toy"}
    assert "tissue" in set(metrics["label"])    # the task's label union
    html = (tmp_path / "results/report/index.html").read_text()
    assert "A fake paper (test)" in html and "Table A" in html


def test_two_papers_and_two_datasets_in_one_stub_run(tmp_path):
    """--papers dgir,<yaml> with --datasets: the fake paper's task runs on the dataset the user
    gave, DGIR's on the embedded stand-in; both datasets are preprocessed, one report. Every
    process of the pipeline runs its stub block here (the real ones run in the shared test run)."""
    import subprocess

    from .conftest import ROOT

    subprocess.run([str(ROOT / "bin/diffreg"), "toy-data", "--outdir", str(tmp_path / "second"), "--n-subjects", "4",
                    "--size", "32", "--ndim", "2", "--seed", "5"], check=True, capture_output=True)
    plugin = tmp_path / "shift_method.py"
    plugin.write_text(textwrap.dedent(PLUGIN))
    paper = tmp_path / "fake.yaml"
    paper.write_text(textwrap.dedent(PAPER).replace("    dataset: toy\n", "    dataset: second\n", 1)
                     .replace("tasks: {toy: toy_2d}", "tasks: {real: toy_2d, toy: toy_2d}"))
    proc = run_nextflow(tmp_path, "-profile", "test", "-stub-run", "--outdir", "results",
                        "--papers", f"dgir,{paper}", "--plugins", str(plugin),
                        "--datasets", f"second={tmp_path / 'second/samplesheet.csv'}")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    plan = tmp_path / "results/pipeline_info/plan"
    regs = pd.read_csv(plan / "registrations.csv")
    assert set(regs[regs.experiment == "fake"]["dataset"]) == {"second"}
    assert set(regs[regs.experiment == "dgir"]["dataset"]) == {"toy"}
    assert set(regs[regs.experiment == "main"]["dataset"]) == {"toy"}
    assert "PREPROCESS (second sub-001)" in proc.stdout and "PREPROCESS (toy sub-001)" in proc.stdout
    assert "ARTIFACTS (dgir)" in proc.stdout and "ARTIFACTS (fake)" in proc.stdout
    for name in PROCESSES:
        assert re.search(rf"process > \S*{name}\b", proc.stdout), f"{name} missing from the stub run"
    assert (tmp_path / "results/report/index.html").exists()

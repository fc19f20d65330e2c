"""DiffuseReg through the real pipeline on the embedded ACDC stand-in at the test profile's size:
the VTN stage, every row of Table 1 and Table 2 (the ten variants of the one method), Fig. 3's
trajectory from the saved sampling steps and the DDIM-vs-DDPM artifact; nothing reads "not
implemented"."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch

from .conftest import run_nextflow


def test_diffusereg_every_row_runs(tmp_path):
    proc = run_nextflow(tmp_path, "-profile", "test", "--outdir", "results", "--papers", "diffusereg",
                        "--methods", "none", "--baselines", "none", "--max_pairs", "1")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    res = tmp_path / "results"

    uses = pd.read_csv(res / "pipeline_info/plan/uses.csv")
    assert (uses["status"] == "run").all()
    # the phi_0 stage ran once, on the training pairs, and wrote the official checkpoint layout
    stages = sorted((res / "pretrained").glob("diffusereg_vtn-*.pt"))
    assert len(stages) == 1
    ckpt = torch.load(stages[0], map_location="cpu", weights_only=True)
    assert {"cascade 0", "cascade 1", "cascade 2", "cascade 3"} <= set(ckpt)

    metrics = pd.concat(pd.read_csv(p) for p in (res / "experiments/metrics").glob("diffusereg__*.csv"))
    labels = uses.loc[uses["row"].str.startswith("diffusereg") | uses["row"].isin(["ddpm", "ddim"]), "label"]
    for label in set(labels):
        rows = metrics[metrics["method"] == label]
        assert not rows.empty, label
        for metric in ("dice_structures", "jsd", "njd", "runtime_s"):
            v = rows.loc[rows["metric"] == metric, "value"]
            assert len(v) and np.isfinite(v).all(), (label, metric)
        dice = rows.loc[rows["metric"] == "dice_structures", "value"]
        assert ((dice >= 0) & (dice <= 1)).all(), label

    # the sampling trajectory: every 10 % of the steps of Table 1's DDPM row (T = 4 at test: 0..4)
    t1 = uses[(uses["artifact"] == "table1") & (uses["row"] == "diffusereg")]["label"].iloc[0]
    reg = sorted((res / "experiments/registrations").glob(f"{t1}__*"))[0]
    run = json.loads((reg / "run.json").read_text())
    assert run["trajectory_times"] == [k / 4 for k in range(5)]
    assert len(list(reg.glob("disp_step*.nii.gz"))) == 5 and (reg / "warped_step4.nii.gz").exists()

    out = res / "experiments/diffusereg"
    text = "".join(p.read_text() for p in out.rglob("*") if p.suffix in (".md", ".csv", ".json", ".html"))
    assert "not implemented" not in text
    for name in ("table1", "table2", "ddim"):
        assert (out / f"{name}.csv").exists(), name
    assert list(out.glob("fig3*.png"))

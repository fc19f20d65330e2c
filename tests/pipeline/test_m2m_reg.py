"""M2M-Reg in the shared `-profile test` run (every paper) on the embedded adni stand-in (4 subjects,
32^3): every declared row of Table 1 (PET and FA: SyN, NiftyReg, FireANTs where installed, each
backbone without M2M-Reg, + L_m2m, + L_m2m + L_gcc, GradICON with LNCC^2) and of Table 2 (all seven
pre-aligned shares) trains or registers at tiny size (every network `width: small`, 2 steps) and is
scored; Fig. 1a's curves of GradICON without and with M2M-Reg are logged during training and drawn;
Figs. 1b and 3 show every row they name; every claim is judged on rows that ran."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from diffreg.baselines import get_baseline
from diffreg.experiments import load_experiment

YAML = Path(__file__).resolve().parents[2] / "experiments" / "m2m_reg.yaml"
TABLES = ("table1_pet_mri", "table1_fa_mri", "table2")
FIGURES = ("fig1b", "fig3")
PAIRS = 2                         # the stand-in's ordered test pairs (2 test subjects)


def test_m2m_reg_end_to_end(test_run):
    check_results(test_run[0])


def check_results(tmp_path):
    """What the run must have written (`tmp_path`: the folder the pipeline ran in)."""
    out = tmp_path / "results" / "experiments" / "m2m_reg"
    exp = load_experiment(YAML)
    fireants_missing = get_baseline("fireants").available()      # an optional dependency: why, or None

    uses = pd.concat(pd.read_csv(p, keep_default_na=False) for p in (tmp_path / "results").rglob("uses.csv"))
    uses = uses[uses["experiment"] == "m2m_reg"]
    assert len(uses) and not (uses["status"] == "not_implemented").any(), uses[uses["status"] == "not_implemented"]

    # every declared row of the three tables has a regenerated value (FireANTs: skipped, saying why, where
    # it is not installed)
    for table in TABLES:
        df = pd.read_csv(out / f"{table}.csv").set_index("method")
        assert "paper_dice" in df.columns, table
        for row in exp.artifacts[table].row_names:
            if row == "fireants" and fireants_missing:
                u = uses[(uses["artifact"] == table) & (uses["row"] == row)]
                assert list(u["status"]) == ["skipped"] and list(u["note"]) == [fireants_missing], u
                continue
            assert row in df.index, (table, row)
            assert df.loc[row, "n"] == PAIRS and df.loc[row, "status"] == "run", (table, row, df.loc[row].to_dict())
            assert np.isfinite(df.loc[row, "dice_mean"]) and np.isfinite(df.loc[row, "pct_jac_nonpos_mean"]), (table, row)

    # the qualitative figures: every row they name ran and is drawn
    for fig in FIGURES:
        named = exp.artifacts[fig].row_names
        u = uses[uses["artifact"] == fig]
        assert len(u) == len(named) * (2 if fig == "fig3" else 1) and (u["status"] == "run").all(), u
        assert (out / f"{fig}.png").stat().st_size > 10_000, fig

    # every claim is judged on rows that ran (at 2 steps nothing is learnt: the verdicts may be ties)
    claims = json.loads((out / "claims.json").read_text())
    declared = sum(len(exp.artifacts[a].all_claims) for a in TABLES + FIGURES)
    assert len(claims) == declared
    for c in claims:
        assert "did not run" not in c["evidence"] and "no other row ran" not in c["evidence"], c

    # Fig. 1a: LNCC and Dice of both schemes logged during training, and drawn
    curves = pd.read_csv(out / "fig1a.csv")                 # the stage's curves, as the figure copied them
    assert set(curves["scheme"]) == {"baseline", "m2m_reg"}
    assert (curves.groupby("scheme")["iteration"].max() == 3).all()
    assert np.isfinite(curves["lncc"]).all() and np.isfinite(curves["dice"]).all()
    assert ((curves["dice"] > 0) & (curves["dice"] <= 1)).all()
    assert (out / "fig1a.png").stat().st_size > 10_000

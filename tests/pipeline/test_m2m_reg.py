"""M2M-Reg in the shared `-profile test` run (every paper) on the embedded adni stand-in (4 subjects, 32^3): M2M-Reg's
full objective on each backbone (Table 1) and with pre-aligned bridges (Table 2) trains and is
scored (tiny networks, 5 steps), Fig. 1a's curves of GradICON without and with M2M-Reg are logged
during training and drawn, Fig. 3 shows the M2M-Reg rows, and no row of the paper's method reads
"not implemented" (every M2M-Reg row runs from test_full on; tests/unit/test_m2m_reg_experiment.py)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd


M2M_ROWS = ["transmorph_m2m_gcc", "corrmlp_m2m_gcc", "gradicon_m2m_gcc"]     # the test profile's


def test_m2m_reg_end_to_end(test_run):
    check_results(test_run[0])


def check_results(tmp_path):
    """What the run must have written (`tmp_path`: the folder the pipeline ran in)."""
    out = tmp_path / "results" / "experiments" / "m2m_reg"

    uses = pd.concat(pd.read_csv(p) for p in (tmp_path / "results").rglob("uses.csv"))
    uses = uses[uses["experiment"] == "m2m_reg"]
    assert len(uses) and not (uses["status"] == "not_implemented").any(), uses[uses["status"] == "not_implemented"]
    pet = pd.read_csv(out / "table1_pet_mri.csv").set_index("method")
    for row in M2M_ROWS + ["gradicon"]:
        assert pet.loc[row, "n"] == 2 and np.isfinite(pet.loc[row, "dice_mean"]), row
        assert np.isfinite(pet.loc[row, "pct_jac_nonpos_mean"]), row
    assert "paper_dice" in pet.columns
    fa = pd.read_csv(out / "table1_fa_mri.csv").set_index("method")
    assert fa.loc["gradicon_m2m_gcc", "n"] == 2 and np.isfinite(fa.loc["gradicon_m2m_gcc", "dice_mean"])
    table2 = pd.read_csv(out / "table2.csv").set_index("method")
    for row in ("pre_0", "pre_100"):                     # unsupervised, k = all (test profile)
        assert table2.loc[row, "n"] == 2 and np.isfinite(table2.loc[row, "dice_mean"]), row

    # the claims: one paired test per backbone; GradICON's is judged on rows that ran (TransMorph and
    # CorrMLP alone, and Table 2's intermediate shares, run from test_full on)
    claims = [c for c in json.loads((out / "claims.json").read_text()) if c["artifact"] in ("table1_pet_mri", "table2")]
    assert len(claims) == 4
    (gradicon,) = [c for c in claims if "GradICON improves" in c["text"]]
    assert "did not run" not in json.dumps(gradicon), gradicon

    # Fig. 1a: LNCC and Dice of both schemes logged during training, and drawn
    curves = pd.read_csv(out / "fig1a.csv")                 # the stage's curves, as the figure copied them
    assert set(curves["scheme"]) == {"baseline", "m2m_reg"}
    assert (curves.groupby("scheme")["iteration"].max() == 3).all()
    assert np.isfinite(curves["lncc"]).all() and np.isfinite(curves["dice"]).all()
    assert ((curves["dice"] > 0) & (curves["dice"] <= 1)).all()
    assert (out / "fig1a.png").stat().st_size > 10_000
    assert (out / "fig3.png").stat().st_size > 10_000 and (out / "fig1b.png").is_file()

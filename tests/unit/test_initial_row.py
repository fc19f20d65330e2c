"""The tables' "initial" row: every `<metric>_before` of the images as given (Dice, NMSE, SSIM,
landmark error), as the papers print one, once per pair."""
import numpy as np
import pandas as pd
import pytest

from diffreg.evaluation import score_pair
from diffreg.registration_outputs import PairData
from diffreg.report.tables import summarize


def _blob(shift: float) -> np.ndarray:
    y, x = np.meshgrid(np.arange(24.0), np.arange(24.0), indexing="ij")
    return np.exp(-((y - 12 - shift) ** 2 + (x - 12) ** 2) / 18.0).astype(np.float32)


def test_before_metrics_score_the_unwarped_moving_image():
    """A blob shifted by 3 voxels: the exact field gives NMSE ~0 after, and `nmse_before` equals
    the NMSE of the unwarped pair, computed by hand."""
    moving, fixed = _blob(0), _blob(3)
    disp = np.zeros((2, 24, 24), np.float32)
    disp[0] = -3.0                                   # fixed(x) = moving(x - 3)
    labels = (moving > 0.5).astype(np.int16)
    data = PairData(disp, moving, fixed, labels, (fixed > 0.5).astype(np.int16))
    rows = {m: v for lab, m, v in score_pair(data, {}, wanted=["nmse", "nmse_before", "ssim_before"])}
    by_hand = float(np.sum((moving.astype(np.float64) - fixed) ** 2) / np.sum(fixed.astype(np.float64) ** 2))
    assert rows["nmse_before"] == pytest.approx(by_hand, rel=1e-6) and rows["nmse_before"] > 0.4
    assert rows["nmse"] < 1e-2 and 0 < rows["ssim_before"] < 1


def test_initial_row_takes_every_before_metric_once_per_pair():
    rows = []
    for method, nmse in (("vm", (0.1, 0.2)), ("ours", (0.05, 0.15))):
        for pair, after, before in zip(("p1", "p2"), nmse, (0.4, 0.6)):
            base = {"experiment": "e", "artifact": "t1", "dataset": "faces", "method": method, "pair": pair}
            rows += [{**base, "label": "all", "metric": "nmse", "value": after},
                     {**base, "label": "all", "metric": "nmse_before", "value": before},
                     {**base, "label": "all", "metric": "landmark_mse_before", "value": 2.0}]
    table = summarize(pd.DataFrame(rows)).set_index("method")
    assert table.loc["initial", "nmse_mean"] == pytest.approx(0.5) and table.loc["initial", "n"] == 2
    assert table.loc["initial", "landmark_mse_mean"] == pytest.approx(2.0)
    assert table.loc["vm", "nmse_mean"] == pytest.approx(0.15) and table.loc["ours", "nmse_mean"] == pytest.approx(0.1)
    assert not any(c.startswith(("nmse_before", "landmark_mse_before")) for c in table.columns)

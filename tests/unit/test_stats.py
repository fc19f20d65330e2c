"""The statistics behind the claim verdicts (diffreg.report.stats), checked against numbers
computed by hand, and the verdict logic on constructed data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from diffreg.report import stats
from diffreg.report.claims import judge


def test_wilcoxon_exact_by_hand():
    # 4 positive differences, ranks 1..4: W+ = 10; of the 16 sign patterns only "all +" (10)
    # and "all -" (0) are as far from E W+ = 5 -> p = 2/16
    assert stats.wilcoxon_exact([0.1, 0.2, 0.3, 0.4]) == (0.125, 10.0, 4)
    # ties: |d| = 1, 1, 1, 2 -> mid-ranks 2, 2, 2, 4; W+ = 8, E = 5. Sums over the 16 patterns:
    # 0 (1), 2 (3), 4 (4), 6 (4), 8 (3), 10 (1); |W - 5| >= 3 for 0, 2, 8, 10 -> 8/16
    assert stats.wilcoxon_exact([1, 1, -1, 2]) == (0.5, 8.0, 4)
    # zeros are dropped (Wilcoxon's convention); nothing left -> p = 1
    assert stats.wilcoxon_exact([0.0, 0.0]) == (1.0, 0.0, 0)
    assert stats.wilcoxon_exact([0.0, 0.3, 0.1, 0.2, 0.4])[0] == 0.125
    # six of one sign: 2/64, the first n where 0.05 can be reached
    assert stats.wilcoxon_exact(np.arange(1, 7))[0] == pytest.approx(2 / 64)
    assert stats.min_attainable_p(5) == pytest.approx(1 / 16) and stats.min_attainable_p(6) < stats.ALPHA


def test_wilcoxon_matches_scipy_without_ties():
    from scipy.stats import wilcoxon
    rng = np.random.default_rng(3)
    for n in (3, 5, 8, 12):
        d = rng.normal(0.2, 1.0, n)
        assert stats.wilcoxon_exact(d)[0] == pytest.approx(wilcoxon(d, method="exact").pvalue)


def test_bootstrap_interval_covers_the_mean_and_is_deterministic():
    x = np.array([0.61, 0.70, 0.64, 0.72, 0.69, 0.66, 0.75, 0.60])
    lo, hi = stats.bootstrap_ci(x)
    assert lo < x.mean() < hi and x.min() <= lo and hi <= x.max()
    assert (lo, hi) == stats.bootstrap_ci(x)                      # same seed, same interval
    # roughly mean ± 1.96 sd/sqrt(n) for a symmetric sample (percentile bootstrap, a bit narrower)
    half = 1.96 * x.std(ddof=1) / np.sqrt(len(x))
    assert hi - lo == pytest.approx(2 * half, rel=0.25)
    assert stats.bootstrap_ci([0.5, 0.5, 0.5]) == (0.5, 0.5)
    assert all(np.isnan(stats.bootstrap_ci([0.5])))


def values(metric="dice", **rows) -> pd.DataFrame:
    return pd.DataFrame([(r, f"p{i}", metric, v) for r, vs in rows.items() for i, v in enumerate(vs)],
                        columns=["row", "pair", "metric", "value"])


BEST = {"metric": "dice", "best": "ours", "among": "all"}
INIT = [0.50, 0.52, 0.48, 0.55, 0.51, 0.49, 0.53, 0.50]
GOOD = [v + 0.20 + 0.01 * i for i, v in enumerate(INIT)]       # +0.20 .. +0.27 over the initial alignment
FAIR = [v + 0.10 + 0.005 * (i % 3) for i, v in enumerate(INIT)]


def test_a_clear_improvement_holds():
    v = judge(BEST, values(initial=INIT, ours=GOOD, lncc=FAIR))
    assert v.verdict == "holds" and v.holds is True
    assert "p = 0.008" in v.reason                                  # 8 pairs, all one sign: 2/256
    lines = {line["row"]: line for line in v.lines}
    assert lines["lncc"]["diff"] == pytest.approx(np.mean(np.subtract(GOOD, FAIR)))
    assert lines["lncc"]["diff_lo"] <= lines["lncc"]["diff"] <= lines["lncc"]["diff_hi"]


def test_a_reversed_claim_does_not_hold():
    v = judge(BEST, values(initial=INIT, ours=FAIR, lncc=GOOD))
    assert v.verdict == "does not hold" and v.holds is False
    assert "lncc is ahead, significantly" in v.reason


def test_identical_rows_never_hold():
    v = judge(BEST, values(initial=INIT, ours=GOOD, lncc=GOOD))
    assert v.verdict in ("consistent", "not testable") and v.holds is None
    noisy = [g + 1e-3 * (-1) ** i for i, g in enumerate(GOOD)]   # equal up to noise: not significant
    assert judge(BEST, values(initial=INIT, ours=noisy, lncc=GOOD)).verdict in ("consistent", "not testable")


def test_few_pairs_are_consistent_at_best():
    v = judge(BEST, values(initial=INIT[:4], ours=GOOD[:4], lncc=FAIR[:4]))
    assert v.verdict == "consistent" and "smallest attainable p is 0.125" in v.reason
    assert judge(BEST, values(ours=GOOD[:1], lncc=FAIR[:1])).verdict == "not testable"


def test_a_row_below_the_initial_alignment_cannot_hold():
    below = [v - 0.02 for v in INIT]
    worse = [v - 0.20 for v in INIT]
    # the demo: the winner is below the Dice before registration, the loser far below
    v = judge(BEST, values(initial=INIT, ours=below, lncc=worse))
    assert v.verdict == "not testable" and "no compared row beats the initial alignment" in v.reason
    # within the margin (+0.005) is no better
    v = judge(BEST, values(initial=INIT, ours=[x + 0.005 for x in INIT], lncc=worse))
    assert v.verdict == "not testable"
    # another row that does register: ours is behind it
    assert judge(BEST, values(initial=INIT, ours=below, lncc=GOOD)).verdict == "does not hold"


def test_within_is_an_equivalence_test():
    check = {"metric": "dice", "run": "ours", "within": 0.03, "of": "lncc"}
    close = [g + 0.002 * (-1) ** i for i, g in enumerate(GOOD)]
    assert judge(check, values(ours=GOOD, lncc=close)).verdict == "holds"
    assert judge(check, values(ours=GOOD, lncc=FAIR)).verdict == "does not hold"
    wide = [g + (0.05 if i % 2 else -0.045) for i, g in enumerate(GOOD)]   # mean 0.0025, spread ±0.05
    assert judge(check, values(ours=GOOD, lncc=wide)).verdict == "consistent"


def test_lower_is_better_metrics_and_sweeps():
    err = values("error_px", lncc=[1, 2, 1, 2, 1, 2, 1], cosine=[3, 4, 3, 4, 3, 4, 3])
    assert judge({"file": "x.csv", "metric": "error_px", "compare": ["lncc", "cosine"]}, err).verdict == "holds"
    sweep = values(**{"initial": INIT, "10": FAIR, "50": GOOD, "600": FAIR})
    assert judge({"argmax_in_range": [10, 150]}, sweep).verdict == "holds"
    assert judge({"argmax_in": [600]}, sweep).verdict == "does not hold"
    assert judge({"argmax_in": [10, 50, 600]}, sweep).verdict == "not testable"   # nothing outside competes


def test_table_flags_rows_that_do_not_beat_the_initial_alignment():
    from diffreg.report import tables
    rows = []
    for i, (a, b) in enumerate(zip(GOOD, INIT)):
        for method, v in (("ours", a), ("idle", b + 0.004)):
            rows += [("e", "t", method, "toy", f"p{i}", "mean", "dice", v),
                     ("e", "t", method, "toy", f"p{i}", "mean", "dice_before", b)]
    summary = tables.summarize(pd.DataFrame(rows, columns=["experiment", "artifact", "method", "dataset", "pair",
                                                           "label", "metric", "value"])).set_index("method")
    assert summary.loc["idle", "beats_initial"] is False and summary.loc["ours", "beats_initial"] is True
    assert summary.loc["idle", "dice_gain_mean"] == pytest.approx(0.004)
    shown = tables.display_tables(summary.reset_index())
    html = tables.to_html(shown)
    assert html.count('class="flag"') == 1 and "did not register better" in html
    assert "| idle ⚠ |" in tables.to_markdown(shown)

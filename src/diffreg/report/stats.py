"""Paired statistics behind every claim verdict.

A claim compares rows measured on the same test pairs (or figure points), so every test is paired:
for each comparison the differences d_i = claimed_i - other_i over the pairs both rows have.

* Test: the two-sided Wilcoxon signed-rank test, exact. Its null distribution is enumerated by
  dynamic programming over all 2^n sign flips of the (mid-)ranks, so ties are handled exactly and
  no normal approximation is needed at the 2-20 pairs these runs have; zero differences are dropped
  (Wilcoxon's convention). With n non-zero differences the smallest attainable p is 2 / 2^n: below
  n = 6 no ordering can be significant at 0.05, and the verdict says so.
* Intervals: percentile bootstrap, 95 %, of the mean (each row) and of the mean paired difference,
  10,000 resamples from a fixed seed: the same inputs give the same report.
* Verdicts: *holds* (claimed ordering, significant at ALPHA against every competitor),
  *consistent* (claimed ordering, not significant), *does not hold* (a competitor is ahead; the
  reason says whether significantly) and *not testable* (a row did not run, fewer than 2 paired
  values, an exact tie, or, for a best-row Dice claim, no compared row beats the initial
  alignment). The burden of proof is on the claim: a reversal counts against it even when not
  significant, an agreement counts for it only when significant.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

ALPHA = 0.05
LEVEL = 0.95
N_BOOT = 10_000
SEED = 0
MIN_PAIRS = 2
INITIAL_MARGIN = 0.01    # Dice: a row must gain more than this over the initial alignment (mean paired gain)

HOLDS, CONSISTENT, FAILS, UNTESTABLE = "holds", "consistent", "does not hold", "not testable"
VERDICTS = (HOLDS, CONSISTENT, FAILS, UNTESTABLE)

METHOD_TEXT = (f"Each claim is tested on the pairs both compared rows registered (figure claims: on the points "
               f"both measures scored) with the two-sided Wilcoxon signed-rank test, exact (all sign flips of the "
               f"mid-ranks; zero differences dropped), at α = {ALPHA:g}. Intervals are {LEVEL:.0%} percentile "
               f"bootstrap intervals ({N_BOOT:,} resamples, seed {SEED}) of each mean and of each paired "
               f"difference. Verdicts: holds = the claimed ordering is significant against every compared row; "
               f"consistent = same direction, not significant; does not hold = another row is ahead (the reason "
               f"says whether significantly); not testable = a row did not run, fewer than {MIN_PAIRS} paired "
               f"values, an exact tie, or no compared row beats the initial alignment. A row whose mean Dice gain "
               f"over the initial alignment is at most {INITIAL_MARGIN:g} is flagged ⚠ in its table. "
               f"With --seeds N (learned rows trained N times), tables show the mean ± SD over pairs of the "
               f"values averaged over seeds, then (± SD over seeds of the per-seed means), and claims are "
               f"tested over seeds × pairs: a row trained once (a classical method, the initial alignment) "
               f"takes its pair's value in every seed's unit.")


# ----------------------------------------------------------------------------- test and intervals

def wilcoxon_exact(d) -> tuple[float, float, int]:
    """(two-sided p, W+ = sum of the ranks of positive differences, n non-zero differences).

    p = P(|W+ - E W+| >= |w - E W+|) under the sign-flip null, counted exactly: with ranks doubled
    (mid-ranks become integers) the number of sign patterns giving each sum is a polynomial
    product, computed by convolution."""
    d = np.asarray(d, dtype=float)
    d = d[np.isfinite(d) & (d != 0)]
    n = len(d)
    if n == 0:
        return 1.0, 0.0, 0
    ranks2 = np.rint(2 * pd.Series(np.abs(d)).rank(method="average").to_numpy()).astype(int)
    counts = np.zeros(int(ranks2.sum()) + 1, dtype=object)   # object: exact integers beyond 2^63
    counts[0] = 1
    for r in ranks2:
        shifted = np.zeros_like(counts)
        shifted[r:] = counts[:len(counts) - r]
        counts = counts + shifted
    w2 = int(ranks2[d > 0].sum())
    centre2 = int(ranks2.sum())     # E[doubled W+] = total / 2: compare |2 s - total| in integers
    dev = abs(2 * w2 - centre2)
    sums = np.arange(len(counts))
    extreme = np.abs(2 * sums - centre2) >= dev
    p = float(counts[extreme].sum()) / float(2 ** n)
    return min(1.0, p), w2 / 2.0, n


def min_attainable_p(n: int) -> float:
    """The smallest two-sided p of the exact test with n distinct non-zero differences."""
    return min(1.0, 2.0 / 2 ** n) if n > 0 else 1.0


def bootstrap_ci(x, level: float = LEVEL, n_boot: int = N_BOOT, seed: int = SEED) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean; (nan, nan) below 2 values."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)
    tail = (1 - level) / 2
    lo, hi = np.quantile(means, [tail, 1 - tail])
    return float(lo), float(hi)


# ----------------------------------------------------------------------------- comparisons

@dataclass
class Comparison:
    """claimed vs other on their common pairs; diff = claimed - other (metric units)."""
    other: str
    n: int
    diff: float
    diff_ci: tuple[float, float]
    p: float
    better: int          # +1 claimed better, -1 other better, 0 tie (in the metric's sense)

    @property
    def significant(self) -> bool:
        return self.n >= MIN_PAIRS and self.p < ALPHA


def compare(claimed: pd.Series, other: pd.Series, name: str, lower_is_better: bool) -> Comparison:
    both = pd.concat([claimed.rename("a"), other.rename("b")], axis=1, join="inner").dropna()
    d = (both["a"] - both["b"]).to_numpy(float)
    n = len(d)
    if n == 0:
        return Comparison(name, 0, float("nan"), (float("nan"), float("nan")), float("nan"), 0)
    mean = float(d.mean())
    p, _, _ = wilcoxon_exact(d)
    sign = 0 if mean == 0 else (1 if mean > 0 else -1)
    return Comparison(name, n, mean, bootstrap_ci(d), p, -sign if lower_is_better else sign)


@dataclass
class Verdict:
    verdict: str
    reason: str
    lines: list[dict] = field(default_factory=list)   # one per row: n, mean, CI, diff vs claimed, CI, p

    @property
    def holds(self) -> bool | None:
        """The older three-valued form (claims.json's ``holds``)."""
        return {HOLDS: True, FAILS: False}.get(self.verdict)


def fmt(v: float) -> str:
    if v is None or not math.isfinite(v):
        return "–"
    a = abs(v)
    return f"{v:.1f}" if a >= 100 else f"{v:.3f}" if a >= 0.01 or a == 0 else f"{v:.2g}"


def fmt_p(p: float) -> str:
    if p is None or not math.isfinite(p):
        return "–"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def _line(row: str, values: pd.Series, cmp: Comparison | None = None) -> dict:
    v = values.dropna().to_numpy(float)
    lo, hi = bootstrap_ci(v)
    out = {"row": row, "n": len(v), "mean": float(v.mean()) if len(v) else float("nan"), "ci_lo": lo, "ci_hi": hi,
           "diff": float("nan"), "diff_lo": float("nan"), "diff_hi": float("nan"), "n_paired": 0, "p": float("nan")}
    if cmp is not None:
        out.update(diff=cmp.diff, diff_lo=cmp.diff_ci[0], diff_hi=cmp.diff_ci[1], n_paired=cmp.n, p=cmp.p)
    return out


def _cmp_text(claimed: str, c: Comparison) -> str:
    return (f"{claimed} − {c.other} = {fmt(c.diff)} [{fmt(c.diff_ci[0])}, {fmt(c.diff_ci[1])}], "
            f"p = {fmt_p(c.p)}, n = {c.n}")


def beats_initial(values: pd.Series, initial: pd.Series, margin: float = INITIAL_MARGIN) -> tuple[bool, float]:
    """(mean paired gain over the initial alignment > margin, that gain); higher is better (Dice)."""
    both = pd.concat([values.rename("a"), initial.rename("b")], axis=1, join="inner").dropna()
    if both.empty:
        return False, float("nan")
    gain = float((both["a"] - both["b"]).mean())
    return gain > margin, gain


def better_than_all(claimed: str, values: dict[str, pd.Series], others: list[str], lower_is_better: bool,
                    initial: pd.Series | None = None) -> Verdict:
    """The claim "``claimed`` is better than each of ``others``" (an intersection-union test: it
    holds only when every comparison is significant, which needs no multiplicity correction)."""
    if claimed not in values:
        return Verdict(UNTESTABLE, f"{claimed} did not run")
    others = [o for o in others if o in values and o != claimed]
    if not others:
        return Verdict(UNTESTABLE, f"{claimed} {fmt(values[claimed].mean())}: no other row ran",
                       [_line(claimed, values[claimed])])
    cmps = [compare(values[claimed], values[o], o, lower_is_better) for o in others]
    lines = [_line(claimed, values[claimed])] + [_line(c.other, values[c.other], c) for c in cmps]
    if initial is not None and len(initial.dropna()):
        gains = {r: beats_initial(values[r], initial) for r in [claimed, *others]}
        lines.insert(0, _line("initial", initial))
        if not any(ok for ok, _ in gains.values()):
            best = max(gains, key=lambda r: gains[r][1] if math.isfinite(gains[r][1]) else -math.inf)
            return Verdict(UNTESTABLE, f"no compared row beats the initial alignment by more than {INITIAL_MARGIN:g} "
                                       f"(largest mean gain: {best} {fmt(gains[best][1])}): nothing registered",
                           lines)
    testable = [c for c in cmps if c.n >= MIN_PAIRS]
    ahead = [c for c in testable if c.better < 0]
    if ahead:
        worst = min(ahead, key=lambda c: (not c.significant, c.p))
        how = "significantly" if worst.significant else "not significantly"
        return Verdict(FAILS, f"{worst.other} is ahead, {how}: {_cmp_text(claimed, worst)}", lines)
    short = [c for c in cmps if c.n < MIN_PAIRS]
    if short:
        return Verdict(UNTESTABLE, f"fewer than {MIN_PAIRS} paired values against "
                                   f"{', '.join(f'{c.other} (n = {c.n})' for c in short)}", lines)
    tied = [c for c in cmps if c.better == 0]
    if tied:
        return Verdict(UNTESTABLE, f"tied with {', '.join(c.other for c in tied)} (mean difference 0): no winner",
                       lines)
    if initial is not None and len(initial.dropna()) and not beats_initial(values[claimed], initial)[0]:
        # cannot happen when another row beats the initial alignment (it would be ahead); kept as a guard
        return Verdict(UNTESTABLE, f"{claimed} does not beat the initial alignment", lines)
    weakest = max(cmps, key=lambda c: c.p)
    if all(c.significant for c in cmps):
        return Verdict(HOLDS, f"ahead of every compared row, significantly; weakest: {_cmp_text(claimed, weakest)}",
                       lines)
    why = f"ahead of every compared row, not significantly against {weakest.other}: {_cmp_text(claimed, weakest)}"
    floor = min_attainable_p(weakest.n)
    if floor >= ALPHA:
        why += f" (with n = {weakest.n} the smallest attainable p is {fmt_p(floor)})"
    return Verdict(CONSISTENT, why, lines)


def within(row: str, other: str, values: dict[str, pd.Series], limit: float) -> Verdict:
    """The claim "|row - other| <= limit": holds when the 95 % interval of the mean paired
    difference lies inside [-limit, limit] (an equivalence test), does not hold when the mean
    difference is outside (significantly when the whole interval is)."""
    missing = [m for m in (row, other) if m not in values]
    if missing:
        return Verdict(UNTESTABLE, f"{', '.join(missing)} did not run")
    c = compare(values[row], values[other], other, lower_is_better=False)
    lines = [_line(row, values[row]), _line(other, values[other], c)]
    if c.n < MIN_PAIRS:
        return Verdict(UNTESTABLE, f"fewer than {MIN_PAIRS} paired values (n = {c.n})", lines)
    lo, hi = c.diff_ci
    text = f"{_cmp_text(row, c)}; limit ±{limit:g}"
    if abs(c.diff) > limit:
        how = "significantly" if (lo > limit or hi < -limit) else "not significantly"
        return Verdict(FAILS, f"outside the limit, {how}: {text}", lines)
    if -limit <= lo and hi <= limit:
        return Verdict(HOLDS, f"the {LEVEL:.0%} interval lies within the limit: {text}", lines)
    return Verdict(CONSISTENT, f"the mean difference is within the limit, its interval is not: {text}", lines)



def at_most(row: str, values: dict[str, pd.Series], limit: float) -> Verdict:
    """The claim "row's mean <= limit" (a threshold a paper's words set, e.g. "almost gone"): holds
    when the upper end of the 95 % interval of the mean is within the limit, does not hold when
    the mean is above it (significantly when the whole interval is)."""
    if row not in values:
        return Verdict(UNTESTABLE, f"no values for {row}")
    v = values[row].dropna()
    lines = [_line(row, v)]
    if len(v) < MIN_PAIRS:
        return Verdict(UNTESTABLE, f"{row}: fewer than {MIN_PAIRS} values (n = {len(v)}, mean "
                                   f"{fmt(float(v.mean()) if len(v) else float('nan'))}); limit {limit:g}", lines)
    lo, hi = bootstrap_ci(v)
    text = f"{row} {fmt(float(v.mean()))} [{fmt(lo)}, {fmt(hi)}], n = {len(v)}; limit {limit:g}"
    if float(v.mean()) > limit:
        how = "significantly" if lo > limit else "not significantly"
        return Verdict(FAILS, f"above the limit, {how}: {text}", lines)
    if hi <= limit:
        return Verdict(HOLDS, f"the {LEVEL:.0%} interval lies within the limit: {text}", lines)
    return Verdict(CONSISTENT, f"the mean is within the limit, its interval is not: {text}", lines)

__all__ = ["ALPHA", "LEVEL", "N_BOOT", "SEED", "INITIAL_MARGIN", "METHOD_TEXT", "VERDICTS", "HOLDS", "CONSISTENT",
           "FAILS", "UNTESTABLE", "wilcoxon_exact", "min_attainable_p", "bootstrap_ci", "compare", "Comparison",
           "Verdict", "better_than_all", "within", "at_most", "beats_initial", "fmt_p"]

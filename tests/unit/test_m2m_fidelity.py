"""M2M-Reg's objective against the official code's, without the official code: the fixture of
`benchmarks/m2m_fidelity.py --write-fixtures tests/fixtures/m2m_reg` holds the official terms (all
loss, cycle similarity, inverse consistency / map gradient, GradCyCon) on random weights and inputs,
in the official composition order and in ICON's (the official forward patched to it)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from m2m_fidelity import CASES, TERMS, run_ours  # noqa: E402  (the benchmark's inputs and our side)

FIX = ROOT / "tests" / "fixtures" / "m2m_reg" / "m2m_objective.pt"


@pytest.fixture(scope="module")
def fixture():
    return torch.load(FIX, weights_only=True)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("order", ["reversed", "icon"])
def test_objective_equals_the_official_code(fixture, case, order):
    official = fixture["cases"][case][order]
    ours = run_ours(case, fixture["states"][case], order)
    assert max(abs(official[k] - ours[k]) for k in TERMS) <= 1e-5
    assert official["gcc"] > 0.1 and official["m2m"] > 0.1       # non-trivial maps (random weights)


@pytest.mark.parametrize("case", list(CASES))
def test_the_two_orders_give_different_losses(fixture, case):
    a, b = fixture["cases"][case]["reversed"], fixture["cases"][case]["icon"]
    assert abs(a["gcc"] - b["gcc"]) > 1e-2
    assert a["reg"] == b["reg"]                # GradICON / the map gradient involve no composed path

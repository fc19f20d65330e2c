"""One check for every paper's YAML: its `rows` (the paper's numbers) against a second
transcription of the printed tables kept in the paper's test."""
from __future__ import annotations

import pytest


def assert_printed(rows: dict, printed: dict, table: str, scale=lambda key: 1.0) -> None:
    """`rows` (row -> {metric: value}) hold exactly `printed`'s rows and keys; "mean (SD)" is a
    tuple in `printed` and a list in the YAML; `scale(key)` turns a printed unit into the YAML's
    (e.g. Dice printed in % -> 0.01); text (e.g. "< 0.01", "122 min, CPU") must match exactly."""
    assert list(rows) == list(printed), table
    for row, values in printed.items():
        assert set(rows[row]) == set(values), (table, row)
        for key, want in values.items():
            got, f = rows[row][key], scale(key)
            if isinstance(want, tuple):
                assert isinstance(got, list) and got == pytest.approx([w * f for w in want], rel=1e-12), (table, row, key)
            elif isinstance(want, str):
                assert got == want, (table, row, key)
            else:
                assert got == pytest.approx(want * f, rel=1e-12), (table, row, key)

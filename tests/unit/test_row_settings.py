"""The report names the settings a method declares as REPORTED (DGIR: its network) per row."""
from __future__ import annotations

import json

import pandas as pd

from diffreg.report.row_settings import settings_notes, training_settings


def _plan(tmp_path, runs):
    (tmp_path / "configs").mkdir()
    rows = []
    for run, method, cfg in runs:
        (tmp_path / "configs" / f"{run}.json").write_text(json.dumps(cfg))
        rows.append(dict(run=run, method=method, ndim=2, dataset="toy", train_moving="t2", train_fixed="nbe",
                         config=f"{run}.json", needs=""))
    pd.DataFrame(rows).to_csv(tmp_path / "trainings.csv", index=False)
    return training_settings(tmp_path)


def _uses(rows):
    return pd.DataFrame([dict(row=r, label=f"{run}@toy_2d.test") for r, run in rows])


def test_network_resolved_with_the_method_default_and_named_per_row(tmp_path):
    settings = _plan(tmp_path, [
        ("a", "dgir", {"loss": "lncc", "network": "small"}),
        ("b", "dgir", {"loss": "diffusion", "feature_checkpoint": {"stage": "s"}}),   # default: official
        ("c", "voxelmorph", {}),                                                     # reports nothing
    ])
    assert set(settings) == {"a", "b"}
    assert settings["a"]["network"].startswith("small") and settings["b"]["network"].startswith("official")
    assert settings_notes(_uses([("lncc", "a"), ("vm", "c")]), settings) == \
        [f"network (every row that ran): {settings['a']['network']}"]
    (note,) = settings_notes(_uses([("lncc", "a"), ("diffusion_lncc", "b")]), settings)
    assert note.startswith("network: lncc: small") and "diffusion_lncc: official" in note


def test_no_plan_files_no_notes(tmp_path):
    assert training_settings(tmp_path) == {}
    assert settings_notes(_uses([("lncc", "a")]), {}) == []

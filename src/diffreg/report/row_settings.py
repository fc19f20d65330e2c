"""The settings a method asks the report to show beside its rows (`MethodConfig.REPORTED`), e.g.
which registration network each DGIR row trained: resolved from the plan's training configs
(`trainings.csv`, `configs/<run>.json` beside `uses.csv`) with the method's own defaults."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from diffreg.configs import config_class
from diffreg.deps import is_dependency


def training_settings(plan_dir: Path) -> dict[str, dict]:
    """run -> {setting: value} for the REPORTED settings of its method (empty where none); a
    registration with its own settings (`registrations.csv` settings: a sampler, its steps) under
    its name, <run>+<hash>, with those settings applied."""
    path = plan_dir / "trainings.csv"
    if not path.exists():
        return {}
    given: dict[str, tuple] = {}
    for _, t in pd.read_csv(path, dtype=str, keep_default_na=False).iterrows():
        cls = config_class(t["method"])
        cfg_file = plan_dir / "configs" / t["config"]
        if cls.REPORTED and cfg_file.exists():
            ndim = int(t["ndim"])
            given[t["run"]] = (cls, ndim, t["method"], {k: v for k, v in json.loads(cfg_file.read_text()).items()
                                                        if not is_dependency(v) and k in cls.settings(ndim)})
    out = {run: _reported(*item) for run, item in given.items()}
    regs = plan_dir / "registrations.csv"
    if regs.exists():
        table = pd.read_csv(regs, dtype=str, keep_default_na=False)
        for _, r in table[table.get("settings", pd.Series("", index=table.index)) != ""].iterrows():
            if r["run"] in given and (plan_dir / "configs" / r["settings"]).exists():
                cls, ndim, method, values = given[r["run"]]
                own = json.loads((plan_dir / "configs" / r["settings"]).read_text())
                out[r["label"].split("@")[0]] = _reported(cls, ndim, method, {**values, **own})
    return out


def _reported(cls, ndim: int, method: str, values: dict) -> dict:
    cfg = cls.from_dict(values, ndim, method)
    return {k: cfg.describe(k) if hasattr(cfg, "describe") else str(getattr(cfg, k)) for k in cls.REPORTED}


def settings_notes(uses: pd.DataFrame, settings: dict[str, dict]) -> list[str]:
    """One note per reported setting: its value for all rows, or per row where rows differ."""
    per_row: dict[str, dict] = {}
    for _, u in uses.iterrows():
        run = str(u["label"]).split("@")[0]
        if run in settings:
            per_row[u["row"]] = settings[run]
    keys = sorted({k for s in per_row.values() for k in s})
    notes = []
    for k in keys:
        values = {row: s[k] for row, s in per_row.items() if k in s}
        if len(set(values.values())) == 1:
            notes.append(f"{k} (every row that ran): {next(iter(values.values()))}")
        else:
            notes.append(f"{k}: " + "; ".join(f"{row}: {v}" for row, v in values.items()))
    return notes

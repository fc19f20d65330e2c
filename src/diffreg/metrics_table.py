"""The long metrics table (docs/conventions.md): its columns, and its CSV written and read back
with every value checked; `read_csv_text`, the CSV reader it uses, also reads landmark files."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from diffreg.errors import InputError

COLUMNS = ["experiment", "artifact", "method", "dataset", "pair", "label", "metric", "value"]


def write_metrics(df: pd.DataFrame, path: str | os.PathLike) -> None:
    df[COLUMNS].to_csv(path, index=False, na_rep="nan", float_format="%.10g")


def read_csv_text(path: str | os.PathLike, kind: str) -> pd.DataFrame:
    """A CSV as strings (no NaN guessing), or one InputError line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a {kind} CSV ({str(exc).splitlines()[0]})") from None


def read_metrics(path: str | os.PathLike, allow_empty: bool = False) -> pd.DataFrame:
    """Read and check one long metrics CSV (exact columns, numeric values); `allow_empty` for
    merged tables of a run without a main path (papers only)."""
    df = read_csv_text(path, "metrics")
    if list(df.columns) != COLUMNS:
        raise InputError(f"{path}: columns must be {','.join(COLUMNS)}, got {','.join(map(str, df.columns))}")
    if df.empty and not allow_empty:
        raise InputError(f"{path}: no rows")
    values = pd.to_numeric(df["value"].str.strip(), errors="coerce")
    bad = values.isna() & ~df["value"].str.strip().str.lower().isin(["nan", ""])
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"{path}: row {i + 2}: value {df['value'].iloc[i]!r} is not a number")
    df["value"] = values.astype(float)
    return df

"""The tables of one artifact: our rows (mean ± sd over pairs, or why a row did not run) beside
the paper's numbers, in the row order of the YAML."""
from __future__ import annotations

import pandas as pd

from diffreg.experiment_model import Artifact
from diffreg.report import tables
from diffreg.report.experiment_rows import Experiment, NO_METRICS, RAN, status_text

def row_order(spec: Artifact, uses: pd.DataFrame, paper_rows: dict) -> list[str]:
    names = spec.row_names
    return list(dict.fromkeys([*names, *paper_rows, *uses["row"]]))


def _cell_key(header: str, keys: list[str]) -> str | None:
    for k in keys:
        if header in (tables.column_title(k), f"{tables.column_title(k)} (paper)"):
            return k
    return None


def _empty_table(caption: str, keys: list[str]) -> tables.DisplayTable:
    headers = [tables.Cell("Method"), tables.Cell("n")]
    for k in keys:
        headers += [tables.Cell(tables.column_title(k)), tables.Cell(f"{tables.column_title(k)} (paper)", paper=True)]
    return tables.DisplayTable(caption, ("", "", ""), headers, [])


def artifact_tables(key: str, spec: Artifact, exp: Experiment, uses: pd.DataFrame,
                    df: pd.DataFrame) -> tuple[list[tables.DisplayTable], pd.DataFrame]:
    """Display tables and the numeric CSV of one table artifact, in the YAML's row order, with the
    status of rows that did not run in our cells and the paper's numbers beside them."""
    paper_rows = exp.paper.rows.get(key, {})
    paper = tables.Paper(exp.name, {key: paper_rows}, {key: exp.paper.columns[key]} if key in exp.paper.columns else {})
    order = row_order(spec, uses, paper_rows)
    status = {}
    for _, u in uses.iterrows():
        ran = u["status"] == RAN and u["row"] in set(df["method"]) if len(df) else False
        status[u["row"]] = None if ran else (NO_METRICS if u["status"] == RAN else status_text(u["status"], u["note"]))
    if len(df):
        summary = tables.summarize(df)
        shown = tables.display_tables(summary, paper)
        numeric = tables.numeric_table(summary, paper)
    else:
        keys = list(dict.fromkeys(k for vals in paper_rows.values() for k in vals))
        shown = [_empty_table(f"{exp.name} / {key} — nothing ran", keys)]
        # the paper's rows that were not planned read "not run", as display_tables writes them
        shown[0].rows = [[tables.Cell(r), tables.Cell("0")] + [tables.Cell("not run", paper=h.paper)
                                                               for h in shown[0].headers[2:]]
                         for r in paper_rows if r not in status]
        for r in shown[0].rows:
            for h, c in zip(shown[0].headers[2:], r[2:]):
                if h.paper:
                    c.text = tables.format_paper_value(paper_rows[r[0].text].get(_cell_key(h.text, keys)))
        numeric = pd.DataFrame(columns=["experiment", "artifact", "dataset", "method", "n"])
    paper_keys = list(dict.fromkeys(k for vals in paper_rows.values() for k in vals))
    for t in shown:
        present = {r[0].text for r in t.rows}
        for row, text in status.items():
            if text is not None and row not in present:
                t.rows.append([tables.Cell(row), tables.Cell("0")] + [tables.Cell("not run", paper=h.paper)
                                                                     for h in t.headers[2:]])
        for r in t.rows:
            text = status.get(r[0].text)
            if text is None:
                continue
            said = False   # the status once, in the row's first cell of ours; dashes after it
            for h, c in zip(t.headers[2:], r[2:]):
                if h.paper:
                    k = _cell_key(h.text, paper_keys)
                    c.text = tables.format_paper_value(paper_rows.get(r[0].text, {}).get(k)) if k else "–"
                else:
                    c.text = "" if h.text == "Threads" else ("–" if said else text)
                    said = said or h.text != "Threads"
        rank = {m: i for i, m in enumerate(order)}
        t.rows.sort(key=lambda r: -1 if r[0].text == tables.INITIAL else rank.get(r[0].text, len(rank)))
    # CSV: our numbers, the paper's, and each row's registration label and status
    first = uses.drop_duplicates("row")      # replicate 0 names the row's registrations
    labels = dict(zip(first["row"], first["label"]))
    numeric = numeric.assign(label=[labels.get(m, "") for m in numeric["method"]],
                             status=[RAN if m in labels else "" for m in numeric["method"]])
    extra = []
    for row in order:
        text = status.get(row)
        if text is None and (row in set(numeric["method"]) or row not in paper_rows):
            continue
        u = uses[uses["row"] == row]
        datasets = numeric["dataset"].dropna().unique() if "dataset" in numeric else []
        rec = {"experiment": exp.name, "artifact": key, "dataset": datasets[0] if len(datasets) == 1 else "",
               "method": row, "n": 0,
               "label": labels.get(row, ""),
               "status": "not_planned" if u.empty else "no_metrics" if text == NO_METRICS else u["status"].iloc[0]}
        rec.update({f"paper_{k}": v for k, v in paper_rows.get(row, {}).items()})
        extra.append(rec)
    if extra:
        numeric = pd.concat([numeric, pd.DataFrame(extra)], ignore_index=True)
    rank = {m: i for i, m in enumerate(order)}
    numeric = numeric.iloc[sorted(range(len(numeric)), key=lambda i: (
        -1 if numeric["method"].iloc[i] == tables.INITIAL else rank.get(numeric["method"].iloc[i], len(rank))))]
    return shown, numeric.reset_index(drop=True)

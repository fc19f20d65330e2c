"""`diffreg tabulate`: merge metrics CSVs and summarise them per method (CSV, Markdown, HTML)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from diffreg.io import RunManifest, atomic_path
from diffreg.metrics_table import COLUMNS, read_metrics, write_metrics
from diffreg.report import tables

NAME = "tabulate"
HELP = "Merge metrics CSVs into metrics_all.csv and a per-method table (table.csv, table.md, table.html)."


def add_arguments(parser) -> None:
    parser.add_argument("--metrics", nargs="*", default=[], metavar="CSV",
                        help="long metrics CSVs written by `diffreg evaluate` (none: empty tables, e.g. a run "
                             "with papers only and no --methods/--baselines)")
    parser.add_argument("--out-dir", required=True, metavar="DIR", help="folder for the tables")
    parser.add_argument("--paper", default=None, metavar="YAML",
                        help="experiment YAML with the paper's numbers (artifacts.<artifact>.rows."
                             "<method>.<metric>); adds '(paper)' columns beside ours")
    parser.add_argument("--columns", nargs="+", default=None, metavar="METRIC",
                        help="metrics of the headline table (default: the paper YAML's artifacts.<a>.columns, "
                             f"else {' '.join(tables.DEFAULT_COLUMNS)}); table.csv always has every metric")
    parser.add_argument("--seed", type=int, default=0, help="recorded only: tabulation is deterministic")


def write_tables(frames, out_dir: Path, paper=None, columns=None) -> dict[str, Path]:
    merged = tables.merge(frames)
    summary = tables.summarize(merged)
    shown = tables.display_tables(summary, paper, columns)
    everything = tables.display_tables(summary, paper, "all")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / name for name in ("metrics_all.csv", "table.csv", "table.md", "table.html")}
    with atomic_path(paths["metrics_all.csv"]) as tmp:
        write_metrics(merged, tmp)
    with atomic_path(paths["table.csv"]) as tmp:
        tables.numeric_table(summary, paper).to_csv(tmp, index=False, na_rep="nan", float_format="%.10g")
    with atomic_path(paths["table.md"]) as tmp:
        tmp.write_text(tables.to_markdown(shown), encoding="utf-8")
    with atomic_path(paths["table.html"]) as tmp:
        tmp.write_text(tables.to_html(shown, more=everything), encoding="utf-8")
    return paths


def run(args) -> int:
    manifest = RunManifest(NAME, {k: v for k, v in vars(args).items() if not k.startswith("_")}, seed=args.seed)
    paper = tables.load_paper(args.paper)
    frames = [read_metrics(p) for p in args.metrics] or [pd.DataFrame(columns=COLUMNS)]
    out_dir = Path(args.out_dir)
    paths = write_tables(frames, out_dir, paper, args.columns)
    manifest.update(n_rows=int(sum(len(f) for f in frames)), paper=paper.name if paper else None)
    manifest.write(out_dir / "run.json")
    print(paths["table.md"].read_text(encoding="utf-8"), end="")
    print(paths["table.csv"])
    return 0

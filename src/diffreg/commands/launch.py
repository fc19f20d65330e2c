"""`diffreg launch`: check a pipeline launch's parameters and list what it runs (diffreg.launch)."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError
from ..io import atomic_path
from ..launch import build_launch

NAME = "launch"
HELP = ("Check every pipeline parameter, samplesheet and experiment YAML before any task and write "
        "launch.json (datasets, papers, plan flags) for main.nf; one line on the first problem.")


def add_arguments(p) -> None:
    p.add_argument("--params", required=True, type=Path, help="the pipeline's parameters as JSON")
    p.add_argument("--out", required=True, type=Path, help="launch.json to write")


def run(args) -> int:
    try:
        params = json.loads(args.params.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{args.params}: {exc}") from None
    launch = build_launch(params)
    with atomic_path(args.out) as tmp:
        Path(tmp).write_text(json.dumps(launch, indent=2) + "\n")
    names = ", ".join(f"{d['name']} ({d['ndim']}D{', embedded' if d['sheet'] is None else ''})" for d in launch["datasets"])
    print(f"[launch] datasets: {names or 'none'}; papers: {', '.join(Path(p).stem for p in launch['papers']) or 'none'}; "
          f"{launch['summary']}")
    for note in launch["notes"]:
        print(f"[launch] note: {note}")
    return 0

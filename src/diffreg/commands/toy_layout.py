"""`diffreg toy-layout`: a small copy of an embedded stand-in in a dataset's PUBLIC on-disk layout
(diffreg.data.layouts), to try `diffreg dataset NAME` and a paper's preprocessing recipe end to end
before the real download is at hand."""
from __future__ import annotations

import shlex
from pathlib import Path

from ..data.layouts import NAMES, write_layout

NAME = "toy-layout"
HELP = ("Write a small stand-in copy in a public dataset's on-disk layout (neurite-oasis, oasis3, acdc, "
        "camus, echonet, adni, knee, or all) and print the `diffreg dataset` command that reads it.")


def add_arguments(p) -> None:
    p.add_argument("--dataset", required=True, choices=(*NAMES, "all"),
                   help="layout to write; all: each into OUTDIR/<name>")
    p.add_argument("--outdir", required=True, type=Path, help="output folder (absent or empty)")
    p.add_argument("--n-subjects", type=int, default=3,
                   help="subjects, at least 3 (knee: half of them per modality, at least 2 each)")
    p.add_argument("--size", type=int, default=32, help="voxels a side (camus / echonet: at least 32)")
    p.add_argument("--seed", type=int, default=0, help="stand-in seed; the same seed gives the same images")


def run(args) -> int:
    names = NAMES if args.dataset == "all" else (args.dataset,)
    for name in names:
        root = args.outdir / name if args.dataset == "all" else args.outdir
        lay = write_layout(name, root, args.n_subjects, args.size, args.seed)
        sheet = Path(f"work/{name}/samplesheet.csv")
        print(f"{name}: {lay.path} ({lay.n_subjects} subjects"
              f"{', stray: ' + ', '.join(Path(s).name for s in lay.strays) if lay.strays else ''})")
        print("  diffreg " + shlex.join(lay.command(sheet)))
    return 0

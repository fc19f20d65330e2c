"""`diffreg figure`: one computed figure of `diffreg.report.figures.FIGURES` on a moving and a
fixed image, with its settings from a JSON file and its staged files from `--dep`."""
from __future__ import annotations

from pathlib import Path

from diffreg.deps import apply_deps, parse_deps
from diffreg.errors import InputError
from diffreg.io import load_json_object
from diffreg.io import RunManifest

NAME = "figure"
HELP = "Draw one computed figure (a name in diffreg.report.figures.FIGURES) from a moving and a fixed image"


def add_arguments(p) -> None:
    p.add_argument("--function", required=True, help="figure function, e.g. dgir.similarity_heatmaps")
    p.add_argument("--config", required=True, type=Path, help="JSON file of the function's settings")
    p.add_argument("--moving", required=True, type=Path, help="moving image (NIfTI, 2D or 3D, intensities in [0,1])")
    p.add_argument("--fixed", required=True, type=Path, help="fixed image (NIfTI, same shape as moving)")
    p.add_argument("--dep", action="append", default=[], metavar="KEY=PATH",
                   help="file for the dependency KEY of the config (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--outdir", required=True, type=Path, help="output folder (the figure's files and run.json)")


def run(args) -> int:
    from diffreg.report.figures import check_config, get_figure  # deferred: pulls in matplotlib

    fn = get_figure(args.function)
    config = apply_deps(load_json_object(args.config, "figure config"), parse_deps(args.dep))
    check_config(args.function, config, where=str(args.config))   # one line before any work
    for path in (args.moving, args.fixed):
        if not path.is_file():
            raise InputError(f"{path}: file not found")
    manifest = RunManifest(NAME, vars(args), seed=args.seed, device=args.device)
    args.outdir.mkdir(parents=True, exist_ok=True)
    files = fn(args.moving, args.fixed, config, args.outdir, args.seed, args.device)
    manifest.update(function=args.function, config=config, files=[Path(f).name for f in files])
    manifest.write(args.outdir / "run.json")
    print(f"[figure {args.function}] wrote {', '.join(str(f) for f in files)}", flush=True)
    return 0

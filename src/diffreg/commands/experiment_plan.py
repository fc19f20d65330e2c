"""`diffreg experiment-plan`: the runs, registration sets and artifact rows of a paper's experiment."""
from __future__ import annotations

from pathlib import Path

from diffreg.errors import InputError
from diffreg.io import RunManifest, read_image

NAME = "experiment-plan"
HELP = "Plan a paper's experiment (experiments/<paper>.yaml): runs.csv, tests.csv, uses.csv and configs"


def add_arguments(p) -> None:
    p.add_argument("--experiment", required=True, type=Path, help="experiment YAML, e.g. experiments/dgir.yaml")
    p.add_argument("--profile", default="full", help="test, test_full or full: which settings and how long")
    p.add_argument("--data", default="toy", choices=("toy", "real"), help="embedded toy data or the paper's data")
    p.add_argument("--example-image", type=Path, default=None,
                   help="one preprocessed image: its dimensionality decides which tasks can run "
                        "(3D toy data also feed the 2D tasks through slices)")
    p.add_argument("--ndims", default=None, help="comma-separated dimensionalities available (instead of --example-image)")
    p.add_argument("--modalities", default=None,
                   help="comma-separated modalities the subjects have (rows needing others are skipped)")
    p.add_argument("--given", default="", help="comma-separated parameters the user gave (e.g. dgir_vgg_weights)")
    p.add_argument("--out", required=True, type=Path, help="output folder")


def available_ndims(args) -> set[int]:
    if args.ndims:
        try:
            return {int(v) for v in args.ndims.split(",") if v}
        except ValueError:
            raise InputError(f"--ndims {args.ndims}: expected e.g. 2,3") from None
    if args.example_image is None:
        raise InputError("give --example-image or --ndims")
    ndim = read_image(args.example_image)[0].ndim
    # toy volumes feed the 2D tasks through slices; real 3D data are not the paper's 2D data set
    return {2, 3} if ndim == 3 and args.data == "toy" else {ndim}


def run(args) -> int:
    from diffreg.experiment_plan import Planner, load_experiment, write_plan

    doc = load_experiment(args.experiment)
    ndims = available_ndims(args)
    given = {g for g in args.given.split(",") if g}
    modalities = {m for m in args.modalities.split(",") if m} if args.modalities else None
    plan = Planner(doc, args.profile, args.data, ndims, given, modalities).build()
    write_plan(plan, args.out)
    RunManifest(NAME, vars(args)).write(args.out / "run.json")
    counts = {s: sum(u.status == s for u in plan.uses) for s in ("run", "needs_weights", "not_implemented", "skipped")}
    print(f"[experiment-plan] {args.experiment.stem} ({args.profile}, {args.data}, {sorted(ndims)}D): "
          f"{len(plan.runs)} trainings, {len(plan.tests)} registration sets; rows: "
          + ", ".join(f"{v} {k}" for k, v in counts.items()), flush=True)
    return 0

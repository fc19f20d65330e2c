"""`diffreg plan`: the plan of a whole pipeline run (docs/engine.md), for the main path and papers."""
from __future__ import annotations

from diffreg.errors import InputError
from diffreg.experiments import find_experiments, load_experiment
from diffreg.io import RunManifest
from diffreg.plan_inputs import add_arguments, datasets_of, main_path  # noqa: F401  (the command's flags)
from diffreg.planner import Planner, write_plan

NAME = "plan"
HELP = ("Plan every pretraining, training, registration, evaluation and figure of the main path "
        "(--main-*) and of experiment YAMLs (--papers): stages/trainings/registrations/uses/figures/"
        "experiments.csv and configs/")


def run(args) -> int:
    ndims, mods, order = datasets_of(args)
    experiments = [load_experiment(p) for p in find_experiments(args.papers)]
    if any(e.name == "main" for e in experiments):
        raise InputError("--papers: 'main' names the main path; rename the experiment file")
    main = main_path(args, ndims, mods, order)
    if main is not None:
        experiments.insert(0, main)
    given = {g for g in args.given.split(",") if g}
    plan = Planner(experiments, ndims, mods, given, args.profile, args.seeds,
                   artifacts=args.artifacts.split(",")).build()
    write_plan(plan, args.out)
    RunManifest(NAME, vars(args)).write(args.out / "run.json")
    data = ", ".join(f"{n} ({'/'.join(f'{d}D' for d in sorted(ndims[n]))})" for n in order) or "none"
    print(f"[plan] {args.profile}: experiments {', '.join(e.name for e in experiments) or 'none'}; "
          f"datasets {data}; {len(plan.stages)} stages, {len(plan.trainings)} trainings, "
          f"{len(plan.registrations)} registration sets, {len(plan.figures)} figures; rows: "
          + ", ".join(f"{v} {k}" for k, v in plan.counts().items()), flush=True)
    return 0

"""`diffreg pretrain`: run one pretraining stage (a kind of `diffreg.stages.STAGES`) with its
settings from a JSON file; the stage writes --out, and run.json goes next to it."""
from __future__ import annotations

import sys
from pathlib import Path

from diffreg.deps import apply_deps, parse_deps
from diffreg.errors import InputError
from diffreg.io import load_json_object
from diffreg.io import RunManifest
from diffreg.stages import check_config, get_stage

NAME = "pretrain"
HELP = "Run one pretraining stage (e.g. adm_natural_images: the offline diffusion feature model)"


def add_arguments(p) -> None:
    p.add_argument("--stage", required=True, help="stage id of the plan (recorded in run.json and the log)")
    p.add_argument("--kind", required=True, help="stage kind, e.g. adm_natural_images")
    p.add_argument("--config", required=True, type=Path, help="JSON file of the stage's settings")
    p.add_argument("--dep", action="append", default=[], metavar="KEY=PATH",
                   help="file for the dependency KEY of the config (repeatable)")
    p.add_argument("--data-dir", default=None, help="folder with <subject>_<modality>.nii.gz images, "
                                                    "for kinds that train on the study's subjects")
    p.add_argument("--subjects", default=None, help="comma-separated training subject ids (with --data-dir)")
    p.add_argument("--moving-modality", default="be", help="modality of moving images")
    p.add_argument("--fixed-modality", default="be", help="modality of fixed images")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    p.add_argument("--out", required=True, type=Path, help="file the stage writes (e.g. STAGE.pt)")


def _training_set(args, config: dict):
    if args.data_dir is None:
        if args.subjects:
            raise InputError("--subjects needs --data-dir")
        return None
    from diffreg.methods import TrainingSet  # deferred: pulls in monai/torch
    subjects = [s for s in (args.subjects or "").split(",") if s]
    if not subjects:
        raise InputError("--data-dir needs --subjects: no training subject given")
    # the stage's own settings `moving` / `fixed` where it declares them (a stage that trains across
    # modalities), else the modalities of the rows it serves (stages.csv, passed by the pipeline)
    modalities = []
    for side, given in (("moving", args.moving_modality), ("fixed", args.fixed_modality)):
        value = config.get(side) or (given if given not in (None, "", "null") else None)
        if not value:
            raise InputError(f"--{side}-modality: not given, and the stage has no setting {side}")
        modalities.append(value)
    return TrainingSet.from_dir(args.data_dir, subjects, *modalities)


def run(args) -> int:
    from diffreg.device import seed_everything  # deferred: pulls in torch
    from diffreg.training.trainer import TrainingDiverged  # deferred: pulls in torch

    fn = get_stage(args.kind)
    config = apply_deps(load_json_object(args.config, "stage config"), parse_deps(args.dep))
    check_config(args.kind, config, where=str(args.config))   # one line before any work
    data = _training_set(args, config)
    manifest = RunManifest(NAME, vars(args), seed=args.seed, device=args.device)
    print(f"[pretrain {args.stage}] kind {args.kind}", flush=True)
    # seeded before the stage builds its network: its initial weights come from --seed too
    seed_everything(args.seed)
    try:
        summary = fn(config, args.out, data, args.seed, args.device, args.threads)
    except TrainingDiverged as exc:
        # the exit code `diffreg train` gives a diverged training: never retried as out-of-memory
        print(f"diffreg: error: {exc}", file=sys.stderr)
        return exc.exit_code
    manifest.update(stage=args.stage, kind=args.kind, **summary)
    manifest.write(args.out.parent / "run.json")
    print(f"[pretrain {args.stage}] wrote {args.out}", flush=True)
    return 0

"""`diffreg pretrain`: run one pretraining stage (a kind of `diffreg.stages.STAGES`) with its
settings from a JSON file; the stage writes --out, and run.json goes next to it."""
from __future__ import annotations

import sys
from pathlib import Path

from diffreg.deps import apply_deps, parse_deps
from diffreg.errors import InputError
from diffreg.io import load_json_object
from diffreg.io import RunManifest

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


def _training_set(args):
    if args.data_dir is None:
        if args.subjects:
            raise InputError("--subjects needs --data-dir")
        return None
    from diffreg.methods import TrainingSet
    subjects = [s for s in (args.subjects or "").split(",") if s]
    if not subjects:
        raise InputError("--data-dir needs --subjects: no training subject given")
    moving, fixed = args.moving_modality, args.fixed_modality
    if UNSET in (moving, fixed):
        # a stage row that names no modalities (the pipeline passes "null"): the images the subjects
        # have, first and last modality by name (e.g. ED and ES frames)
        found = _modalities(Path(args.data_dir), subjects)
        if not found:
            raise InputError(f"{args.data_dir}: no image of subjects {', '.join(subjects)}")
        moving = found[0] if moving == UNSET else moving
        fixed = found[-1] if fixed == UNSET else fixed
    return TrainingSet.from_dir(args.data_dir, subjects, moving, fixed)


UNSET = "null"


def _modalities(data_dir: Path, subjects: list[str]) -> list[str]:
    """Image modalities (not label maps) every subject has in `data_dir` (<subject>_<modality>.nii.gz)."""
    common = None
    for s in subjects:
        mods = {p.name[len(s) + 1:-len(".nii.gz")] for p in data_dir.glob(f"{s}_*.nii.gz")}
        mods = {m for m in mods if m and not m.endswith("labels") and "_" not in m and "." not in m}
        common = mods if common is None else common & mods
    return sorted(common or ())


def run(args) -> int:
    from diffreg.methods.trainer import TrainingDiverged
    from diffreg.stages import check_config, get_stage

    fn = get_stage(args.kind)
    config = apply_deps(load_json_object(args.config, "stage config"), parse_deps(args.dep))
    check_config(args.kind, config, where=str(args.config))   # one line before any work
    data = _training_set(args)
    manifest = RunManifest(NAME, vars(args), seed=args.seed, device=args.device)
    print(f"[pretrain {args.stage}] kind {args.kind}", flush=True)
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

"""`diffreg train`: fit a learned method on the training subjects and save it with its log."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from ..deps import apply_deps, parse_deps
from ..device import resolve_device, seed_everything, set_threads
from ..errors import InputError
from ..io import RunManifest, load_json_object
from ..methods import METHODS, Method, TrainingSet, build_method
from ..training.checkpoint import Checkpoint, fingerprint
from ..training.config import check_seed
from ..training.distributed import init_from_env, leave, local_device
from ..training.trainer import TrainingDiverged

NAME = "train"
HELP = "Train a learned registration method on the training subjects"


def add_arguments(p) -> None:
    p.add_argument("--method", required=True, help=f"method name ({', '.join(METHODS.names())})")
    p.add_argument("--data-dir", required=True, help="folder with <subject>_<modality>.nii.gz images")
    p.add_argument("--subjects", required=True, help="comma-separated training subject ids")
    p.add_argument("--atlas-subject", default=None, metavar="ID|first",
                   help="atlas-based training: every step registers a training subject onto this one "
                        "(first: the first by id, the atlas `make-pairs --scheme atlas` picks)")
    p.add_argument("--moving-modality", default="be", help="modality of moving images")
    p.add_argument("--fixed-modality", default="be", help="modality of fixed images")
    p.add_argument("--backbone", default=None, help="backbone name (method default if unset)")
    p.add_argument("--similarity", default=None, help="similarity loss name (method default if unset)")
    p.add_argument("--regulariser", default=None, help="regulariser name (method default if unset)")
    p.add_argument("--lambda-reg", type=float, default=None, help="regulariser weight")
    p.add_argument("--iterations", type=int, default=None, help="training iterations")
    p.add_argument("--batch-size", type=int, default=None, help="pairs per step")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate")
    p.add_argument("--intra-subject", action="store_true",
                   help="train on pairs within a subject (moving and fixed modality of one subject)")
    p.add_argument("--config", default=None,
                   help="JSON file with method settings (a run config of the plan; flags override it)")
    p.add_argument("--dep", action="append", default=[], metavar="KEY=PATH",
                   help="file for a dependency the config declares (repeatable)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--checkpoint-dir", default=None, metavar="DIR",
                   help="save a checkpoint here every --checkpoint-every iterations and resume from it "
                        "when the same training is started again (e.g. a retried task)")
    p.add_argument("--checkpoint-every", type=int, default=100, metavar="N",
                   help="iterations between checkpoints (with --checkpoint-dir; default 100)")
    p.add_argument("--out", required=True, help="output folder for the model")


# flags that set a method setting of the same name (a method may rename one: FLAG_KEYS)
FLAG_SETTINGS = ("backbone", "similarity", "regulariser", "lambda_reg", "iterations", "batch_size", "lr", "seed")


def run_config(args, method_cls: type[Method]) -> dict:
    """The method settings of this run: --config, its dependencies filled by --dep, then the
    flags given (unset flags leave the method's paper defaults)."""
    config = load_json_object(args.config, "--config file of method settings") if args.config else {}
    config = apply_deps(config, parse_deps(args.dep))
    rename = method_cls.Config.FLAG_KEYS
    for flag in FLAG_SETTINGS:
        value = getattr(args, flag)
        if value is not None:
            config[rename.get(flag, flag)] = value
    if args.intra_subject:
        config["inter_subject"] = False
    return config


def describe_parameters(method: Method) -> str:
    """'123,456 parameters' with the share of each network when there are several."""
    counts = method.parameter_counts()
    total = sum(n for n, _ in counts.values())
    if len(counts) < 2:
        return f"{total:,} parameters"
    parts = [f"{name} {n:,}" + ("" if trainable == n else " frozen" if trainable == 0 else f" ({trainable:,} trained)")
             for name, (n, trainable) in counts.items()]
    return f"{total:,} parameters ({'; '.join(parts)})"


def run(args) -> int:
    if args.method not in METHODS:
        raise InputError(f"unknown method '{args.method}' (known: {', '.join(METHODS.names())})")
    check_seed(args.seed)
    device = resolve_device(args.device)
    rank, size = init_from_env(device)              # torchrun: one process per GPU (training.distributed)
    try:
        return _train(args, local_device(device), rank, size)
    finally:
        leave()                                     # every process waits for rank 0's model, then leaves


def _train(args, device, rank: int, size: int) -> int:
    threads = set_threads(args.threads)
    seed_everything(args.seed)
    subjects = [s for s in args.subjects.split(",") if s]
    if not subjects:
        raise InputError("--subjects: no training subject given")
    config = run_config(args, METHODS.get(args.method))
    data = TrainingSet.from_dir(args.data_dir, subjects, args.moving_modality, args.fixed_modality)
    if args.atlas_subject:
        data.use_atlas(args.atlas_subject)
    manifest = RunManifest("train", vars(args), seed=args.seed, device=str(device))
    method = build_method(args.method, len(data.shape), config, device)
    print(f"[train {args.method}] {len(subjects)} subjects, shape {data.shape}, device {device}, "
          f"{threads} threads, {describe_parameters(method)}"
          + (f", process {rank + 1} of {size}" if size > 1 else ""), flush=True)
    if args.checkpoint_dir:
        if args.checkpoint_every < 1:
            raise InputError(f"--checkpoint-every {args.checkpoint_every}: must be >= 1")
        files = sorted((p.name, p.stat().st_size) for p in Path(args.data_dir).iterdir() if p.is_file())
        key = fingerprint(method=args.method, config=method.config, subjects=subjects, seed=args.seed, atlas=data.atlas,
                          moving=args.moving_modality, fixed=args.fixed_modality, files=files)
        method.checkpoint = Checkpoint(Path(args.checkpoint_dir) / f"{args.method}-{key}.ckpt",
                                       args.checkpoint_every, key)
    out = Path(args.out)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        stats = method.fit(data, log_path=out / "training_log.csv")
    except TrainingDiverged as exc:
        # no model and no log of a diverged training: a rerun never mistakes it for a trained one
        if created:
            shutil.rmtree(out, ignore_errors=True)
        print(f"diffreg: error: {exc}", file=sys.stderr)
        return exc.exit_code
    if rank > 0:                                    # rank 0 writes the model
        return 0
    method.save(out)
    if method.checkpoint:
        method.checkpoint.remove()
    manifest.update(method=args.method, config=method.config, subjects=subjects, shape=list(data.shape),
                    threads=threads, **stats)
    manifest.write(out / "run.json")
    print(f"[train {args.method}] done in {stats['train_time_s']} s; model in {out}", flush=True)
    return 0

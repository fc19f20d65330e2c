"""`diffreg train`: fit a learned method on the training subjects and save it with its log."""
from __future__ import annotations

import json
from pathlib import Path

from ..device import resolve_device, seed_everything, set_threads
from ..errors import InputError
from ..io import RunManifest
from ..methods import METHODS, TrainingSet, build_method

NAME = "train"
HELP = "Train a learned registration method on the training subjects"


def add_arguments(p) -> None:
    p.add_argument("--method", required=True, help=f"method name ({', '.join(METHODS.names())})")
    p.add_argument("--data-dir", required=True, help="folder with <subject>_<modality>.nii.gz images")
    p.add_argument("--subjects", required=True, help="comma-separated training subject ids")
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
    p.add_argument("--config", default=None, help="JSON file with further method settings")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--out", required=True, help="output folder for the model")


def run(args) -> int:
    if args.method not in METHODS:
        raise InputError(f"unknown method '{args.method}' (known: {', '.join(METHODS.names())})")
    device = resolve_device(args.device)
    threads = set_threads(args.threads)
    seed_everything(args.seed)
    subjects = [s for s in args.subjects.split(",") if s]
    if not subjects:
        raise InputError("--subjects: no training subject given")
    data = TrainingSet.from_dir(args.data_dir, subjects, args.moving_modality, args.fixed_modality)
    config = json.loads(Path(args.config).read_text()) if args.config else {}
    # only the settings the user gave override the method's paper defaults
    config.update({k: v for k, v in {
        "backbone": args.backbone, "similarity": args.similarity, "regulariser": args.regulariser,
        "lambda_reg": args.lambda_reg, "iterations": args.iterations, "batch_size": args.batch_size,
        "lr": args.lr, "seed": args.seed}.items() if v is not None})
    if args.intra_subject:
        config["inter_subject"] = False
    # the paper defaults of a similarity's window only apply to that similarity
    if args.similarity and "similarity_kwargs" not in config:
        config["similarity_kwargs"] = {}
    manifest = RunManifest("train", vars(args), seed=args.seed, device=str(device))
    method = build_method(args.method, len(data.shape), config, device)
    print(f"[train {args.method}] {len(subjects)} subjects, shape {data.shape}, device {device}, "
          f"{threads} threads, {sum(p.numel() for p in method.net.parameters()):,} parameters", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stats = method.fit(data, log_path=out / "training_log.csv")
    method.save(out)
    manifest.update(method=args.method, config=method.config, subjects=subjects, shape=list(data.shape),
                    threads=threads, **stats)
    manifest.write(out / "run.json")
    print(f"[train {args.method}] done in {stats['train_time_s']} s; model in {out}", flush=True)
    return 0

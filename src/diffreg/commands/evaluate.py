"""`diffreg evaluate`: score registration outputs into one long metrics CSV.

`--config eval.json` ({experiment, dataset, label_unions, metrics, trajectory, landmarks, score_on, scored_labels},
written by the plan) declares what an experiment asks: its experiment and dataset columns (they take
precedence over the flags), label unions scored beside the single labels, the metrics to compute
(null: all), the frames of a trajectory, whether to score the subjects' landmark files and which
version of the images (rgb) the intensity metrics are scored on.

`--sets sets.csv` (columns label, config, out) scores several registration sets in one call, each
set's registrations (run.json method = its label) under its own config into its own CSV: the
pipeline evaluates every set of one experiment on one dataset in one task, so that Python and
torch start once per experiment, not once per set."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from diffreg.evaluation import evaluate_registration
from diffreg.evaluation_config import load_eval_config, load_label_names
from diffreg.errors import InputError
from diffreg.io import RunManifest, atomic_path, read_csv_rows
from diffreg.metrics_table import COLUMNS, write_metrics
from diffreg.registration_outputs import ImageIndex, find_registrations

NAME = "evaluate"
HELP = "Dice, Jacobian statistics, image similarity and runtime of registration outputs, as one long CSV."


def add_arguments(parser) -> None:
    parser.add_argument("--registration", nargs="+", required=True, metavar="DIR",
                        help="registration output directory (<method>__<pair> with disp.nii.gz and run.json), "
                             "or a folder of them; several allowed")
    parser.add_argument("--images-dir", nargs="+", required=True, metavar="DIR",
                        help="folder(s) holding the preprocessed images and label maps named in run.json "
                             "(searched recursively)")
    parser.add_argument("--label-names", default=None, metavar="JSON",
                        help='labels.json mapping label id to name, e.g. {"1": "CSF"}; default "label N"')
    parser.add_argument("--config", default=None, metavar="JSON",
                        help='evaluation config {"experiment", "dataset", "label_unions": {NAME: [values]}, '
                             '"metrics": [names] or null, "trajectory", "landmarks": bool, "score_on": "rgb"}')
    parser.add_argument("--experiment", default=None,
                        help="value of the experiment column, unless --config gives it (neither: 'default')")
    parser.add_argument("--artifact", default="main", help="value of the artifact column (the table or figure)")
    parser.add_argument("--dataset", default=None,
                        help="value of the dataset column, unless --config gives it "
                             "(default: run.json 'dataset', else 'unknown')")
    parser.add_argument("--out", default=None, metavar="CSV", help="metrics CSV to write (or give --sets)")
    parser.add_argument("--sets", default=None, metavar="CSV",
                        help="several registration sets instead of --config/--out: columns label (the run.json "
                             "method of the set's registrations), config (evaluation config JSON) and out (CSV)")
    parser.add_argument("--seed", type=int, default=0, help="recorded only: evaluation is deterministic")


SET_COLUMNS = ("label", "config", "out")


def read_sets(path: str) -> list[dict]:
    """The rows of --sets, or one InputError line."""
    rows = read_csv_rows(path, "--sets", SET_COLUMNS, SET_COLUMNS, "sets")
    outs = [r["out"] for r in rows]
    if len(set(outs)) != len(outs):
        raise InputError(f"{path}: two sets write one file ({sorted(o for o in outs if outs.count(o) > 1)[0]})")
    return rows


def run(args) -> int:
    if args.sets and (args.out or args.config):
        raise InputError("give --sets, or --config and --out, not both")
    if not args.sets and not args.out:
        raise InputError("give --out (or --sets)")
    regs = find_registrations(args.registration)
    images = ImageIndex(args.images_dir)
    if not args.sets:
        evaluate_set(args, regs, images, args.config, Path(args.out), Path(args.out).parent / "run.json")
        return 0
    rows = read_sets(args.sets)
    known = {r.method for r in regs}
    for row in rows:
        if row["label"] not in known:
            raise InputError(f"{args.sets}: set {row['label']!r} has no registration under "
                             f"{', '.join(args.registration)}")
    for row in rows:
        out = Path(row["out"])
        evaluate_set(args, [r for r in regs if r.method == row["label"]], images, row["config"] or None, out,
                     out.with_name(out.name.removesuffix(".csv") + ".run.json"))
    return 0


def evaluate_set(args, regs: list, images: ImageIndex, config_path: str | None, out: Path, manifest_path: Path) -> None:
    """One set's registrations scored under one evaluation config into `out`, with its run.json."""
    params = {k: v for k, v in vars(args).items() if not k.startswith("_")}
    params.update(config=config_path, out=str(out))
    manifest = RunManifest(NAME, params, seed=args.seed)
    config = load_eval_config(config_path)
    experiment = config.experiment or args.experiment or "default"
    dataset = config.dataset or args.dataset
    names = config.label_names(load_label_names(args.label_names))
    frames = [evaluate_registration(r, images, names, experiment, args.artifact, dataset,
                                    config.label_unions, config.metrics, config.trajectory,
                                    config.landmarks, config.score_on) for r in regs]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    with atomic_path(out) as tmp:
        write_metrics(df, tmp)
    manifest.update(experiment=experiment, dataset=dataset, label_unions=config.label_unions,
                    scored_labels=config.scored_labels,
                    metrics=config.metrics, landmarks=config.landmarks,
                    score_on=config.score_on, n_registrations=len(regs), n_rows=len(df))
    manifest.write(manifest_path)
    print(out)

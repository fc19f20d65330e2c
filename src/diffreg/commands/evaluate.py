"""`diffreg evaluate`: score registration outputs into one long metrics CSV.

`--config eval.json` ({experiment, dataset, label_unions, metrics, trajectory, landmarks, score_on, scored_labels},
written by the plan) declares what an experiment asks: its experiment and dataset columns (they take
precedence over the flags), label unions scored beside the single labels, the metrics to compute
(null: all), the frames of a trajectory, whether to score the subjects' landmark files and which
version of the images (rgb) the intensity metrics are scored on."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from diffreg.evaluation import evaluate_registration
from diffreg.evaluation_config import load_eval_config, load_label_names
from diffreg.io import RunManifest, atomic_path
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
    parser.add_argument("--out", required=True, metavar="CSV", help="metrics CSV to write")
    parser.add_argument("--seed", type=int, default=0, help="recorded only: evaluation is deterministic")


def run(args) -> int:
    manifest = RunManifest(NAME, {k: v for k, v in vars(args).items() if not k.startswith("_")}, seed=args.seed)
    config = load_eval_config(args.config)
    experiment = config.experiment or args.experiment or "default"
    dataset = config.dataset or args.dataset
    names = config.label_names(load_label_names(args.label_names))
    regs = find_registrations(args.registration)
    images = ImageIndex(args.images_dir)
    frames = [evaluate_registration(r, images, names, experiment, args.artifact, dataset,
                                    config.label_unions, config.metrics, config.trajectory,
                                    config.landmarks, config.score_on) for r in regs]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    out = Path(args.out)
    with atomic_path(out) as tmp:
        write_metrics(df, tmp)
    manifest.update(experiment=experiment, dataset=dataset, label_unions=config.label_unions,
                    scored_labels=config.scored_labels,
                    metrics=config.metrics, landmarks=config.landmarks,
                    score_on=config.score_on, n_registrations=len(regs), n_rows=len(df))
    manifest.write(out.parent / "run.json")
    print(out)
    return 0

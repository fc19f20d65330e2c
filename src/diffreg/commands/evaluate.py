"""`diffreg evaluate`: score registration outputs into one long metrics CSV."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from diffreg.evaluation import (COLUMNS, ImageIndex, evaluate_registration, find_registrations,
                                load_label_names, write_metrics)
from diffreg.io import RunManifest, atomic_path

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
    parser.add_argument("--experiment", default="default", help="value of the experiment column")
    parser.add_argument("--artifact", default="main", help="value of the artifact column (the table or figure)")
    parser.add_argument("--dataset", default=None,
                        help="value of the dataset column (default: run.json 'dataset', else 'unknown')")
    parser.add_argument("--out", required=True, metavar="CSV", help="metrics CSV to write")
    parser.add_argument("--seed", type=int, default=0, help="recorded only: evaluation is deterministic")


def run(args) -> int:
    manifest = RunManifest(NAME, {k: v for k, v in vars(args).items() if not k.startswith("_")}, seed=args.seed)
    names = load_label_names(args.label_names)
    regs = find_registrations(args.registration)
    images = ImageIndex(args.images_dir)
    frames = [evaluate_registration(r, images, names, args.experiment, args.artifact, args.dataset)
              for r in regs]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    out = Path(args.out)
    with atomic_path(out) as tmp:
        write_metrics(df, tmp)
    manifest.update(n_registrations=len(regs), n_rows=len(df))
    manifest.write(out.parent / "run.json")
    print(out)
    return 0

"""What `diffreg plan` is given: its flags, the datasets they name and the main path's
experiment. Apart from the command so that `diffreg launch` makes the same plan dry."""
from __future__ import annotations

from pathlib import Path

from .errors import InputError
from .io import read_image
from .planner import main_experiment, parse_set


def add_arguments(p) -> None:
    p.add_argument("--papers", nargs="*", default=[], metavar="NAME|YAML",
                   help="experiments: names (experiments/<name>.yaml), YAML paths, 'all' or 'none'; "
                        "comma-separated lists are split")
    p.add_argument("--profile", default="full", help="test, test_full or full: which rows and how long")
    p.add_argument("--dataset", nargs=3, action="append", default=[], metavar=("NAME", "IMAGE", "MODALITIES"),
                   help="an available dataset: its name, one preprocessed image (its dimensionality; the 3D "
                        "volumes of 'toy' also feed the 2D tasks) and its modalities, comma-separated ('-': unknown)")
    p.add_argument("--sliced", default="", metavar="NAME,...",
                   help="3D datasets (--dataset) that also feed 2D tasks through one slice per subject, "
                        "as the pipeline cuts them for a paper's 2D task on 3D data (toy always)")
    p.add_argument("--ndims", action="append", default=[], metavar="NAME=2,3",
                   help="an available dataset by its dimensionalities, modalities unknown (instead of --dataset)")
    p.add_argument("--given", default="", help="comma-separated parameters whose files the user gave "
                                                "(a stage's param or a files: entry of an experiment)")
    p.add_argument("--main-methods", default="", help="learned methods of the main path, comma-separated")
    p.add_argument("--main-baselines", default="",
                   help="classical baselines of the main path: TOOL or TOOL=PRESET, comma-separated")
    p.add_argument("--main-set", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting of every main method (VALUE read as JSON when it is JSON)")
    p.add_argument("--main-dataset", default=None, help="dataset of the main path (default: the first given)")
    p.add_argument("--main-moving", default=None, help="moving modality of the main path "
                                                        "(default: the dataset's only one; 'be' on toy)")
    p.add_argument("--main-fixed", default=None, help="fixed modality of the main path (default: as --main-moving)")
    p.add_argument("--main-pairing", default="inter", choices=("inter", "intra"),
                   help="intra: moving and fixed from one subject (config inter_subject: false)")
    p.add_argument("--artifacts", default="", metavar="SEL,...",
                   help="plan only these tables and figures: PAPER, PAPER:ARTIFACT, PAPER:ARTIFACT:ROW+ROW or ARTIFACT, comma-separated "
                        "(default all; the others are listed as 'not selected')")
    p.add_argument("--seeds", type=int, default=1,
                   help="train every learned row this many times, with seeds --seed + 0 .. N-1 (default 1)")
    p.add_argument("--out", required=True, type=Path, help="output folder (the plan)")


def datasets_of(args) -> tuple[dict[str, set[int]], dict[str, set[str] | None], list[str]]:
    """(name -> ndims, name -> modalities or None, names in the order given)."""
    ndims: dict[str, set[int]] = {}
    mods: dict[str, set[str] | None] = {}
    order: list[str] = []
    for name, image, modalities in args.dataset:
        if name in ndims:
            raise InputError(f"--dataset {name}: given twice")
        nd = read_image(image)[0].ndim
        # the embedded volumes feed the 2D tasks through slices, and so do the 3D datasets the pipeline
        # slices for a 2D task (--sliced); other 3D data are not a 2D data set
        sliced = name == "toy" or name in args.sliced.split(",")
        ndims[name] = {2, 3} if sliced and nd == 3 else {nd}
        mods[name] = None if modalities.strip() in ("", "-") else {m for m in modalities.split(",") if m}
        order.append(name)
    for item in args.ndims:
        name, sep, text = item.partition("=")
        try:
            values = {int(v) for v in text.split(",") if v}
        except ValueError:
            values = set()
        if not sep or not name or not values or not values <= {2, 3}:
            raise InputError(f"--ndims {item}: expected NAME=2,3")
        if name in ndims:
            raise InputError(f"--ndims {name}: dataset given twice")
        ndims[name], mods[name] = values, None
        order.append(name)
    return ndims, mods, order


def main_path(args, ndims, mods, order):
    methods = [m for m in args.main_methods.split(",") if m and m != "none"]
    baselines = [b for b in args.main_baselines.split(",") if b and b != "none"]
    if not methods and not baselines:
        return None
    if not order:
        raise InputError("the main path needs a dataset: give --dataset or --ndims")
    dataset = args.main_dataset or order[0]
    if dataset not in ndims:
        raise InputError(f"--main-dataset {dataset}: not an available dataset ({', '.join(order)})")
    known = mods.get(dataset)
    moving = args.main_moving
    if moving is None:
        if known is not None and len(known) == 1:
            moving = next(iter(known))
        elif dataset == "toy":
            moving = "be"
        else:
            raise InputError(f"--main-moving: give the moving modality of dataset {dataset}"
                             + (f" ({', '.join(sorted(known))})" if known else ""))
    fixed = args.main_fixed or moving
    for flag, m in (("--main-moving", moving), ("--main-fixed", fixed)):
        if known is not None and m not in known:
            raise InputError(f"{flag} {m}: dataset {dataset} has modalities {', '.join(sorted(known))}")
    # the main path registers the data as they are: volumes when there are volumes
    return main_experiment(methods, baselines, parse_set(args.main_set), dataset, max(ndims[dataset]),
                           moving, fixed, args.main_pairing)

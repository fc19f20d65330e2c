"""`diffreg dataset <name>`: turn a public dataset's on-disk layout into our samplesheet and the
pairs its paper uses (adapters: diffreg.data.adapters; splits/pairings: experiments/pairs/)."""
from __future__ import annotations

from pathlib import Path

from ..data.adapters import load_all
from ..data.adapters.common import AdapterArgs
from ..io import RunManifest

NAME = "dataset"
HELP = "Write samplesheet.csv (+ pairs_*.csv) from a public dataset's on-disk layout."

NAMES = ("neurite-oasis", "oasis3", "acdc", "camus", "echonet", "adni", "knee")


def add_arguments(p) -> None:
    p.add_argument("name", choices=NAMES, help="dataset")
    p.add_argument("--root", type=Path, default=None, help="dataset folder, in its public layout")
    p.add_argument("--csv", type=Path, default=None, help="adni / knee: the CSV listing the files")
    p.add_argument("--out", type=Path, required=True,
                   help="samplesheet to write; pairs_<pairing>.csv, labels.json, converted files (data/) go beside it")
    p.add_argument("--split-scheme", default=None,
                   help="split scheme declared in the dataset's YAML (when not given: the default it declares)")
    p.add_argument("--config", type=Path, default=None,
                   help="splits/pairings YAML (when not given: experiments/pairs/<name>.yaml)")
    p.add_argument("--seg", default="seg4", help="neurite-oasis: seg4 or seg35 label maps")
    p.add_argument("--view", default="2CH", help="camus: 2CH or 4CH")
    p.add_argument("--atlas-image", type=Path, default=None, help="oasis3: atlas image (fixed) of the atlas pairs")
    p.add_argument("--atlas-labels", type=Path, default=None, help="oasis3: label map of --atlas-image")
    p.add_argument("--limit", type=int, default=None, help="echonet: use only the first N videos of FileList.csv")
    p.add_argument("--no-image-check", action="store_true", help="do not open every image while validating")
    p.add_argument("--no-mid-frames", action="store_true",
                   help="acdc: write ED and ES only, not the cine's intermediate frames (modalities mid1..mid3)")
    p.add_argument("--seed", type=int, default=0, help="seed of a split the adapter draws itself (acdc: stratified "
                   "by pathology group)")


def run(args) -> int:
    registry = load_all()
    params = {k: v for k, v in vars(args).items() if not k.startswith("_")}
    manifest = RunManifest(f"{NAME} {args.name}", params)
    a = AdapterArgs(root=args.root, csv=args.csv, out=args.out, split_scheme=args.split_scheme, config=args.config,
                    options={"seg": args.seg, "view": args.view, "atlas_image": args.atlas_image,
                             "atlas_labels": args.atlas_labels, "limit": args.limit,
                             "check_images": not args.no_image_check, "seed": args.seed,
                             "mid_frames": not args.no_mid_frames})
    written = registry.build(args.name, a)
    manifest.update(outputs=written)
    manifest.write(Path(args.out).parent / "run.json")
    for k, v in written.items():
        print(f"{k}: {v}")
    return 0

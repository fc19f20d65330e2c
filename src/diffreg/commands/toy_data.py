"""`diffreg toy-data`: an embedded dataset (see diffreg.data.standins; default: the brain population
of diffreg.data.toy)."""
from __future__ import annotations

from pathlib import Path

from ..data import standins
from ..data.standins.qc import render_qc
from ..io import RunManifest

NAME = "toy-data"
HELP = ("Make an embedded dataset (NIfTI + samplesheet.csv + labels.json, plus its ground truth) from "
        "anatomy and images shipped in PyPI packages: brain (default), oasis, acdc, camus, echonet, faces, adni.")


def add_arguments(p) -> None:
    p.add_argument("--dataset", default="brain",
                   help="embedded dataset: brain, oasis (brain with finer labels), acdc, camus, echonet, faces, adni")
    p.add_argument("--outdir", required=True, type=Path, help="output folder")
    p.add_argument("--n-subjects", type=int, default=None, help="number of subjects (>= 3; at least 2 go to test) "
                   "[dataset default: 8]")
    p.add_argument("--size", type=int, default=None, help="voxels a side (16..256) [brain 48, acdc 96, camus/echonet "
                   "112, faces 128, adni 48]")
    p.add_argument("--ndim", type=int, choices=(2, 3), default=None,
                   help="3D volumes or 2D images [brain/acdc/adni 3; camus/echonet/faces 2 only]")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives identical files")
    g = p.add_argument_group("brain / oasis / adni")
    g.add_argument("--velocity-std", type=float, default=None,
                   help="std of the random velocity field, as a fraction of the image side [0.02]")
    g.add_argument("--smoothness", type=float, default=None,
                   help="Gaussian sigma of the velocity field, as a fraction of the image side [0.12]")
    g.add_argument("--no-affine", action="store_true",
                   help="no random affine per subject (subjects are then marked prealigned)")
    g = p.add_argument_group("acdc / camus / echonet / faces")
    g.add_argument("--slices", type=int, default=None, help="acdc: short-axis slices of 10 mm [10]")
    g.add_argument("--n-frames", type=int, default=None,
                   help="acdc: frames ED..ES [5]; echonet: frames of the video (ED..ES..ED) [16]")
    g.add_argument("--view", default=None, help="camus: 2CH or 4CH [2CH]")
    g.add_argument("--n-expressions", type=int, default=None, help="faces: expressions per face [3]")
    p.add_argument("--qc", type=Path, default=None, metavar="DIR",
                   help="also write DIR/<dataset>_standin.png: a few subjects, every modality with its labels (the report shows it)")
    p.add_argument("--absolute-paths", action="store_true",
                   help="write absolute paths in samplesheet.csv (default: file names, relative to it)")


def run(args) -> int:
    standin = standins.get(args.dataset)
    given = {"n_subjects": args.n_subjects, "size": args.size, "ndim": args.ndim, "seed": args.seed,
             "velocity_std": args.velocity_std, "smoothness": args.smoothness,
             "affine": False if args.no_affine else None, "slices": args.slices, "n_frames": args.n_frames,
             "view": args.view, "n_expressions": args.n_expressions}
    cfg = standins.make_config(standin, **given)
    manifest = RunManifest(NAME, {"dataset": standin.name, **vars(cfg)}, seed=args.seed)
    df = standin.generate(args.outdir, cfg, absolute_paths=args.absolute_paths)
    manifest.update(dataset=standin.name, adapter_layout=standin.adapter, n_subjects=len(df),
                    splits=df["split"].value_counts().to_dict(),
                    samplesheet=str(Path(args.outdir) / "samplesheet.csv"))
    if args.qc is not None:
        png = render_qc(args.outdir, Path(args.qc) / f"{standin.name}_standin.png",
                        title=f"{standin.name}: {standin.summary}")
        manifest.update(qc=str(png))
    # how the pipeline pairs it (TOY_DATA reads it for make-pairs --scheme)
    (Path(args.outdir) / "pair_scheme.txt").write_text(standin.pairing + "\n")
    manifest.write(Path(args.outdir) / "run.json")
    print(Path(args.outdir) / "samplesheet.csv")
    return 0

"""`diffreg toy-data`: the embedded demo population (see diffreg.data.toy)."""
from __future__ import annotations

from pathlib import Path

NAME = "toy-data"
HELP = "Make a synthetic head population (NIfTI + samplesheet.csv) from anatomy shipped in PyPI packages."


def add_arguments(p) -> None:
    p.add_argument("--outdir", required=True, type=Path, help="output folder")
    p.add_argument("--n-subjects", type=int, default=8, help="number of subjects (>= 3; at least 2 go to test)")
    p.add_argument("--size", type=int, default=48, help="voxels a side (16..256)")
    p.add_argument("--ndim", type=int, choices=(2, 3), default=3, help="3D volumes or 2D axial slices")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives identical files")
    p.add_argument("--velocity-std", type=float, default=0.02,
                   help="std of the random velocity field, as a fraction of the image side")
    p.add_argument("--smoothness", type=float, default=0.12,
                   help="Gaussian sigma of the velocity field, as a fraction of the image side")
    p.add_argument("--no-affine", action="store_true",
                   help="no random affine per subject (subjects are then marked prealigned)")
    p.add_argument("--absolute-paths", action="store_true",
                   help="write absolute paths in samplesheet.csv (default: file names, relative to it)")


def run(args) -> int:
    from ..data.toy import ToyConfig, generate
    from ..io import RunManifest

    cfg = ToyConfig(n_subjects=args.n_subjects, size=args.size, ndim=args.ndim, seed=args.seed,
                    velocity_std=args.velocity_std, smoothness=args.smoothness,
                    affine=not args.no_affine)
    manifest = RunManifest(NAME, vars(cfg), seed=args.seed)
    df = generate(args.outdir, cfg, absolute_paths=args.absolute_paths)
    manifest.update(n_subjects=len(df), splits=df["split"].value_counts().to_dict(),
                    samplesheet=str(Path(args.outdir) / "samplesheet.csv"))
    manifest.write(Path(args.outdir) / "run.json")
    print(Path(args.outdir) / "samplesheet.csv")
    return 0

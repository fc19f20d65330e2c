"""The flags of `diffreg preprocess`, apart from the command so that the launch check can parse
--preprocess_args and --dataset_args exactly as the command will."""
from __future__ import annotations

from pathlib import Path

from .affine import TRANSFORMS
from .intensity import METHODS


def add_arguments(p) -> None:
    p.add_argument("--subject", required=True, help="subject id (names the QC picture)")
    p.add_argument("--images", nargs="+", required=True, help="the subject's images; the first drives the registration")
    p.add_argument("--labels", nargs="*", default=[], help="label maps on the images' grid (nearest/genericLabel)")
    p.add_argument("--reference", default=None, help="reference image (template or a reference subject): the alignment target; it also sets the "
                        "output grid unless --spacing is given")
    p.add_argument("--outdir", required=True, type=Path, help="output folder (file names are kept)")
    p.add_argument("--transform", choices=TRANSFORMS, default=None,
                   help="ANTs transform to the reference (Affine when --reference is given; none = resample only)")
    p.add_argument("--prealigned", action="store_true",
                   help="the subject is already affinely aligned (samplesheet column prealigned): "
                        "no registration to the reference, only resampling onto its grid (--transform none)")
    p.add_argument("--shape", nargs="+", type=int, default=None, help="crop/pad to this shape around the foreground")
    p.add_argument("--spacing", nargs="+", type=float, default=None, help="resample to this voxel spacing in mm on a grid holding the whole subject; --shape then "
                        "crops/pads around its label map's centre of mass (a --reference only aligns)")
    p.add_argument("--resize", nargs="+", type=int, default=None, help="resize to this shape before crop/pad (e.g. 112 112)")
    p.add_argument("--intensity", choices=METHODS, default="minmax", help="intensity normalisation to [0, 1]")
    p.add_argument("--percentiles", nargs=2, type=float, default=(0.0, 99.9), help="lower/upper clip percentiles")
    p.add_argument("--skullstrip", choices=("none", "robex", "ants_atlas", "external"), default="none",
                   help="skull-strip every image with a mask computed on the first (3D T1)")
    p.add_argument("--skullstrip-command", default=None,
                   help="external tool, with {input} and {mask} placeholders (e.g. SynthStrip, HD-BET)")
    p.add_argument("--extract-slice", default=None, help="2D output: AXIS[:mid|label|INDEX], e.g. 2:mid")
    p.add_argument("--pet-index", type=int, default=None, help="index in --images of a PET image to pons-normalise")
    p.add_argument("--pet-modality", default=None, metavar="NAME",
                   help="pons-normalise the image whose --names entry ends in _NAME.nii.gz (the pipeline's "
                        "<subject>_<modality> names: the PET wherever its column sits; instead of --pet-index)")
    p.add_argument("--pons-label", nargs="+", type=int, default=[16],
                   help="label value(s) holding the pons in the first label map (FreeSurfer brainstem 16; "
                        "9 after the 11-group merge)")
    p.add_argument("--pons-whole-label", action="store_true",
                   help="use the whole --pons-label region (default: the middle third of the brainstem)")
    p.add_argument("--threads", type=int, default=1, help="ITK threads for ANTs")
    p.add_argument("--seed", type=int, default=0, help="seed of ANTs' metric sampling")
    p.add_argument("--names", nargs="+", default=None,
                   help="output file names for --images then --labels, in order (default: the input names); "
                        "the pipeline writes <subject>_<modality>.nii.gz and <subject>_labels.nii.gz")

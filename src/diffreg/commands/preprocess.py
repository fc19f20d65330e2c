"""`diffreg preprocess`: one subject through skull-strip / affine / crop / intensity (diffreg.preprocess)."""
from __future__ import annotations

from pathlib import Path

NAME = "preprocess"
HELP = "Align a subject's images and labels to a reference (ANTsPy), crop/pad, scale to [0, 1]; QC PNG."


def add_arguments(p) -> None:
    from ..preprocess.affine import TRANSFORMS
    from ..preprocess.intensity import METHODS

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


def run(args) -> int:
    import numpy as np

    from ..errors import InputError
    from ..io import RunManifest, write_image
    from ..preprocess.qc import save_qc
    from ..preprocess.subject import Options, run_subject

    inputs = list(args.images) + list(args.labels)
    names = args.names or [Path(p).name for p in inputs]
    if len(names) != len(inputs):
        raise InputError(f"--names: {len(names)} names for {len(inputs)} images and label maps")
    if len(set(names)) != len(names):
        raise InputError("two outputs share a file name; give distinct --names")
    pet_index = args.pet_index
    if args.pet_modality is not None:
        if pet_index is not None:
            raise InputError("--pet-modality and --pet-index exclude each other")
        hits = [i for i, n in enumerate(names[:len(args.images)]) if n.endswith(f"_{args.pet_modality}.nii.gz")]
        if len(hits) != 1:
            raise InputError(f"--pet-modality {args.pet_modality}: {'no' if not hits else 'more than one'} image "
                             f"named *_{args.pet_modality}.nii.gz among {', '.join(names[:len(args.images)])}")
        pet_index = hits[0]
    transform = "none" if args.prealigned else args.transform or ("Affine" if args.reference else "none")
    opt = Options(reference=args.reference, transform=transform, shape=args.shape, spacing=args.spacing,
                  resize=args.resize, intensity=args.intensity, percentiles=tuple(args.percentiles),
                  skullstrip=args.skullstrip, skullstrip_command=args.skullstrip_command,
                  extract_slice=args.extract_slice, pons_label=args.pons_label, pet_index=pet_index,
                  pons_middle_third=not args.pons_whole_label,
                  threads=args.threads, seed=args.seed, subject=args.subject)
    manifest = RunManifest(NAME, {k: v for k, v in vars(args).items() if not k.startswith("_")}, seed=args.seed)
    res = run_subject(args.images, args.labels, opt)
    out = Path(args.outdir)
    written = []
    for name, a in zip(names, res.images):
        written.append(str(write_image(out / name, a.astype(np.float32), res.affine)))
    for name, lab in zip(names[len(args.images):], res.labels):
        dtype = np.uint8 if lab.min() >= 0 and lab.max() < 256 else np.int16
        written.append(str(write_image(out / name, lab.astype(dtype), res.affine)))
    if res.mask is not None:
        written.append(str(write_image(out / f"{args.subject}_brainmask.nii.gz", res.mask.astype(np.uint8),
                                       res.affine if res.mask.shape == res.images[0].shape else None)))
    qc = save_qc(out / f"{args.subject}_qc.png", res.before, res.images[0], res.reference,
                 title=f"{args.subject}: preprocess", labels=res.labels[0] if res.labels else None)
    manifest.update(outputs=written, qc=str(qc), **res.info)
    manifest.write(out / "run.json")
    print(out)
    return 0

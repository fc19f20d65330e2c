"""`diffreg preprocess`: one subject through skull-strip / affine / crop / intensity (diffreg.preprocess)."""
from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from ..io import RunManifest, write_image
from ..preprocess.flags import add_arguments  # noqa: F401  (the command's flags)
from ..preprocess.qc import save_qc
from ..preprocess.subject import Options, run_subject

NAME = "preprocess"
HELP = "Align a subject's images and labels to a reference (ANTsPy), crop/pad, scale to [0, 1]; QC PNG."


def run(args) -> int:
    import numpy as np

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

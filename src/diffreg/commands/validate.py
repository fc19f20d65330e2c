"""`diffreg validate`: check a samplesheet and every file it names (schema: diffreg.data.samplesheet)."""
from __future__ import annotations

from pathlib import Path

from ..data.samplesheet import image_ndim, load_samplesheet, modalities, read_label_values, write_samplesheet
from ..errors import InputError
from ..io import RunManifest, load_json_object

NAME = "validate"
HELP = "Check a samplesheet (columns, ids, splits, files, shapes, NaN/Inf, label values); one line per verdict."


def add_arguments(p) -> None:
    p.add_argument("--input", required=True, type=Path, help="samplesheet CSV")
    p.add_argument("--label-values", default=None,
                   help="allowed label values, e.g. 0,1,2,3 or 0-35 (default: keys of labels.json beside "
                        "the samplesheet, else any non-negative integer)")
    p.add_argument("--label-names", type=Path, default=None,
                   help="labels.json (label value -> name, as the pipeline's --label_names): its keys are the "
                        "allowed label values (instead of --label-values)")
    p.add_argument("--out", type=Path, default=None,
                   help="also write the validated samplesheet here, with absolute paths (and run.json beside it)")
    p.add_argument("--allow-missing-labels", action="store_true",
                   help="without a declared label set, accept a label value that some labelled subjects lack "
                        "(refused by default: usually a stray value)")
    p.add_argument("--no-image-check", action="store_true",
                   help="check columns, ids, splits and file existence only (do not open images)")


def run(args) -> int:
    manifest = RunManifest(NAME, {k: v for k, v in vars(args).items() if not k.startswith("_")})
    if args.label_names is not None:
        names = load_json_object(args.label_names, "label names (value -> name)")
        try:
            values = {int(k) for k in names}
        except ValueError:
            raise InputError(f"{args.label_names}: keys must be integer label values, "
                             f"got {', '.join(sorted(names))}") from None
    else:
        values = read_label_values(args.label_values, args.input)
    df = load_samplesheet(args.input, check_images=not args.no_image_check, label_values=values,
                          allow_missing_labels=args.allow_missing_labels)
    counts = df["split"].value_counts()
    summary = (f"{args.input}: OK, {len(df)} subjects ("
               + ", ".join(f"{s} {int(counts.get(s, 0))}" for s in ("train", "val", "test"))
               + f"), modalities {', '.join(modalities(df))}, {image_ndim(df)}D")
    found = df.attrs.get("labels_found") or {}
    if found:
        print("labels found: " + "; ".join(f"{sid} {','.join(map(str, v)) or 'none'}" for sid, v in found.items()))
    if args.out:
        write_samplesheet(df, args.out)
        manifest.update(n_subjects=len(df), modalities=modalities(df))
        manifest.write(Path(args.out).parent / "run.json")
    print(summary)
    return 0

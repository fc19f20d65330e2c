"""`diffreg make-pairs`: registration pairs from a samplesheet (schemes: diffreg.data.pairs)."""
from __future__ import annotations

from pathlib import Path

from ..data.pairs import PairSpec, SCHEMES, load_pairing, make_pairs
from ..data.samplesheet import load_samplesheet
from ..io import RunManifest, atomic_path

NAME = "make-pairs"
HELP = "Write the registration pairs (pairs.csv) of one split and scheme of a samplesheet."

_FIELDS = ("scheme", "split", "moving_modality", "fixed_modality", "atlas_subject", "atlas_image",
           "atlas_labels", "n_pairs", "max_pairs")


def add_arguments(p) -> None:
    p.add_argument("--input", required=True, type=Path, help="samplesheet CSV")
    p.add_argument("--out", required=True, type=Path, help="pairs CSV to write (run.json goes beside it)")
    p.add_argument("--config", type=Path, default=None,
                   help="a pairing file, experiments/pairs/<dataset>.yaml; flags given here override it")
    p.add_argument("--pairing", default=None, help="pairing name inside --config")
    p.add_argument("--split", default=None, help="train, val or test (when not given: test)")
    p.add_argument("--scheme", choices=SCHEMES, default=None, help="pairing scheme (when not given: all_ordered)")
    p.add_argument("--moving-modality", default=None, help="modality of the moving image, image_<m> (when not given: be)")
    p.add_argument("--fixed-modality", default=None, help="modality of the fixed image (when not given: the moving one)")
    p.add_argument("--atlas-subject", default=None, help="atlas scheme: the subject used as fixed image")
    p.add_argument("--atlas-image", default=None, help="atlas scheme: an image file used as fixed image")
    p.add_argument("--atlas-labels", default=None, help="atlas scheme: label map of --atlas-image")
    p.add_argument("--n-pairs", type=int, default=None, help="random scheme: number of pairs")
    p.add_argument("--max-pairs", type=int, default=None, help="keep only the first N pairs")
    p.add_argument("--seed", type=int, default=0, help="seed of the random scheme")
    p.add_argument("--no-image-check", action="store_true", help="do not open the images while validating")


def run(args) -> int:
    conf = load_pairing(args.config, args.pairing) if args.config else {}
    values = {k: conf.get(k) for k in _FIELDS}
    for k in _FIELDS:
        if getattr(args, k) is not None:
            values[k] = getattr(args, k)
    values["scheme"] = values["scheme"] or "all_ordered"
    values["split"] = values["split"] or "test"
    values["moving_modality"] = values["moving_modality"] or "be"
    values["fixed_modality"] = values["fixed_modality"] or values["moving_modality"]
    spec = PairSpec(seed=args.seed, **values)
    manifest = RunManifest(NAME, {**vars(spec), "input": str(args.input), "config": str(args.config or "")},
                           seed=args.seed)
    df = load_samplesheet(args.input, check_images=not args.no_image_check)
    pairs = make_pairs(df, spec)
    with atomic_path(args.out) as tmp:
        pairs.to_csv(tmp, index=False, lineterminator="\n")
    manifest.update(n_pairs=len(pairs))
    manifest.write(Path(args.out).parent / "run.json")
    print(f"{args.out}: {len(pairs)} pairs ({spec.scheme}, {spec.split}, "
          f"{spec.moving_modality} -> {spec.fixed_modality})")
    return 0

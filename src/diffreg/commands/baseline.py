"""`diffreg baseline`: register one pair with a classical tool (ANTs SyN, NiftyReg, LDDMM, FireANTs)."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError

NAME = "baseline"
HELP = "Register one pair with a classical baseline (syn, niftyreg, lddmm, fireants) and a paper's preset."


def _config(text: str | None) -> dict:
    if not text:
        return {}
    try:
        value = json.loads(Path(text[1:]).read_text() if text.startswith("@") else text)
    except (OSError, ValueError) as exc:
        raise InputError(f"--config: not a JSON object or @file.json ({exc})") from None
    if not isinstance(value, dict):
        raise InputError("--config: expected a JSON object")
    return value


def add_arguments(p) -> None:
    p.add_argument("--method", required=True, choices=["syn", "niftyreg", "lddmm", "fireants"],
                   help="baseline to run")
    p.add_argument("--preset", default=None,
                   help="named configuration (syn: ldm_morph, m2m_reg, diffusemorph, test; niftyreg: "
                        "default, m2m_reg, test; lddmm: transmorph, ldm_morph, test; fireants: m2m_reg, "
                        "test); when omitted, the method's first paper preset")
    p.add_argument("--config", default=None,
                   help='JSON object (or @file.json) overriding single preset options, e.g. \'{"maxit": 50}\'')
    p.add_argument("--fixed", required=True, type=Path, help="fixed image (NIfTI)")
    p.add_argument("--moving", required=True, type=Path, help="moving image (NIfTI, same grid as --fixed)")
    p.add_argument("--moving-labels", default=None, type=Path, help="moving label map, warped with the field")
    p.add_argument("--fixed-labels", default=None, type=Path,
                   help="fixed label map (only recorded in run.json, for evaluation)")
    p.add_argument("--pair", default=None, help="pair id written to run.json; when omitted, <moving>__<fixed>")
    p.add_argument("--name", default=None,
                   help="method name written to run.json; when omitted, the method, plus -<preset> for a "
                        "non-default preset")
    p.add_argument("--outdir", required=True, type=Path,
                   help="output folder: disp.nii.gz, warped.nii.gz, warped_labels.nii.gz, run.json")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for the tool and for warping")
    p.add_argument("--seed", type=int, default=0, help="random seed (ANTs sampling, torch)")


def run(args) -> int:
    from ..baselines import run_baseline  # deferred: pulls in torch

    rec = run_baseline(args.method, args.fixed, args.moving, args.moving_labels, args.outdir,
                       threads=args.threads, config=_config(args.config), preset=args.preset,
                       seed=args.seed, fixed_labels_path=args.fixed_labels, pair=args.pair,
                       method=args.name)
    print(f"{args.outdir}: {rec['method']} ({rec['preset']}) on {rec['pair']} in "
          f"{rec['register_time_s']:.1f} s, {args.threads} thread(s), {rec['device']}")
    return 0

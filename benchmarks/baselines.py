"""Time per pair of each classical baseline at 2D 128^2 and 3D 48^3, with the thread count.

    python benchmarks/baselines.py [--threads 1 2] [--methods syn niftyreg lddmm]
                                   [--presets paper|test] [--sizes 2d 3d] [--out results.json]

Each row is one registration of the synthetic known-warp pair (diffreg.baselines.synthetic) with a
paper preset (syn: ldm_morph, niftyreg: default and m2m_reg, lddmm: transmorph). Every row runs in
its own `diffreg baseline` process, because ITK fixes its thread count at its first parallel call.
The time is run.json's ``register_time_s``: the tool's registration and the conversion of its
field, without start-up, image reading or writing (LDDMM on CUDA ends with a synchronize). The
mean displacement error against the known warp is printed as a check that the run did its job.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

PAPER = {"syn": ["ldm_morph"], "niftyreg": ["default", "m2m_reg"], "lddmm": ["transmorph"],
         "fireants": ["m2m_reg"]}
SIZES = {"2d": (128, 128), "3d": (48, 48, 48)}


def run_one(method: str, preset: str, paths: dict, outdir: Path, threads: int) -> dict:
    cmd = [sys.executable, "-m", "diffreg.cli", "baseline", "--method", method, "--preset", preset,
           "--fixed", str(paths["fixed"]), "--moving", str(paths["moving"]),
           "--moving-labels", str(paths["moving_labels"]), "--outdir", str(outdir), "--threads", str(threads)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1]}
    return json.loads((outdir / "run.json").read_text())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1], help="thread counts to time")
    ap.add_argument("--methods", nargs="+", default=["syn", "niftyreg", "lddmm"], choices=sorted(PAPER))
    ap.add_argument("--presets", choices=["paper", "test"], default="paper",
                    help="the papers' presets, or the fast CI presets")
    ap.add_argument("--sizes", nargs="+", choices=sorted(SIZES), default=["2d", "3d"])
    ap.add_argument("--out", type=Path, default=None, help="also write the rows as JSON here")
    args = ap.parse_args()

    from diffreg.baselines import BASELINES
    from diffreg.baselines.synthetic import known_pair
    from diffreg.io import read_field

    rows = []
    print(f"{'method':<10} {'preset':<10} {'size':<10} {'threads':>7} {'device':>6} {'time/pair s':>12} "
          f"{'err vox':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            shape = SIZES[size]
            kp = known_pair(shape)
            paths = kp.write(Path(tmp) / size)
            fg = kp.fixed_labels > 0
            for method in args.methods:
                reason = BASELINES.build(method).available()
                presets = PAPER[method] if args.presets == "paper" else ["test"]
                for preset in presets:
                    for threads in args.threads:
                        label = "x".join(map(str, shape))
                        if reason:
                            print(f"{method:<10} {preset:<10} {label:<10} {threads:>7} {'-':>6} "
                                  f"{'skipped: ' + reason}")
                            continue
                        out = Path(tmp) / f"{method}-{preset}-{size}-{threads}"
                        rec = run_one(method, preset, paths, out, threads)
                        if "error" in rec:
                            print(f"{method:<10} {preset:<10} {label:<10} {threads:>7} {'-':>6} failed: {rec['error']}")
                            continue
                        disp, _ = read_field(out / "disp.nii.gz")
                        err = float(np.linalg.norm(disp - kp.u_true, axis=0)[fg].mean())
                        row = {"method": method, "preset": preset, "shape": list(shape), "threads": threads,
                               "device": rec["device"], "seconds_per_pair": rec["register_time_s"],
                               "mean_error_vox": round(err, 3), "tool_version": rec["tool_version"]}
                        rows.append(row)
                        print(f"{method:<10} {preset:<10} {label:<10} {threads:>7} {rec['device']:>6} "
                              f"{rec['register_time_s']:>12.2f} {err:>8.3f}", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

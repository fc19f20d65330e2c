"""Stage kind `m2m_training_curves` (M2M-Reg Fig. 1a): the multi-modal LNCC and the Dice of phi_AB
during training, GradICON trained as usual (multi-modal LNCC on A -> B and B -> A, GradICON
lambda 1.5) beside GradICON trained with M2M-Reg (methods.m2m_reg), from the same initial weights
on the same sampled pairs.

Logged every `every` steps on the step's (A, B) pairs (different subjects; the paper averages over
its test set instead, docs/m2m-reg.md): LNCC(A o phi_AB, B) (ICON's, sigma 5: what the baseline
maximises) and the Dice of A's labels warped by phi_AB against B's (mean over B's labels; needs the
subjects' label maps, else NaN). Writes a CSV (scheme, iteration, loss, lncc, dice) as the stage's
file; `report.figures.m2m_reg.training_curves` draws it.
"""
from __future__ import annotations

import csv
from pathlib import Path

from diffreg.errors import InputError
from diffreg.io import atomic_path

from .registry import check_config, register

KIND = "m2m_training_curves"
SETTINGS = {
    "iterations": 50000,      # paper Sec. 3
    "every": 500,             # log interval (steps)
    "batch_size": 8,          # paper Sec. 3 (GradICON)
    "lr": 5e-5,               # paper Sec. 3
    "levels": 2,              # the GradICON chain of the code
    "width": "paper",         # "small": m2m_reg's tiny networks (short profiles)
    "lambda_reg": 0.5,        # M2M-Reg's GradICON weight (paper Sec. 3)
    "lambda_gcc": 0.1,
    "baseline_lambda": 1.5,   # GradICON without M2M-Reg (paper Sec. 3)
    "subject_draw": "distinct",
    "moving": None,           # the source and target modalities (e.g. pet, t1): `diffreg pretrain`
    "fixed": None,            # reads them when the pipeline passes none
}
COLUMNS = ["scheme", "iteration", "loss", "lncc", "dice"]


def mean_dice(warped, target) -> float:
    """Mean Dice over the labels (> 0) of `target`; NaN without any."""
    import torch

    values = []
    for lab in torch.unique(target):
        if lab <= 0:
            continue
        a, b = warped == lab, target == lab
        values.append(float(2 * (a & b).sum() / (a.sum() + b.sum())))
    return float(sum(values) / len(values)) if values else float("nan")


@register(KIND, SETTINGS, uses_data=True)
def m2m_training_curves(config: dict, out: Path, data, seed: int, device: str, threads: int) -> dict:
    import numpy as np
    import torch
    import torch.nn.functional as F

    # deferred: pulls in monai/torch
    from diffreg.device import resolve_device, set_threads
    from diffreg.methods import build_method
    from diffreg.methods.gradicon import gradicon_terms
    from diffreg.training.trainer import check_finite_terms, to_device
    from diffreg.nets.tallunet import identity01, sample01

    if data is None:
        raise InputError(f"{KIND} trains on the study's training subjects: give them")
    s = check_config(KIND, config)
    for key in ("iterations", "every", "batch_size"):
        if not isinstance(s[key], int) or isinstance(s[key], bool) or s[key] < 1:
            raise InputError(f"{KIND}: {key} {s[key]!r} must be an integer >= 1")
    dev = resolve_device(device)
    set_threads(threads)
    ndim = len(data.shape)
    cfg = {k: s[k] for k in ("levels", "width", "lambda_reg", "lambda_gcc", "subject_draw", "lr")}
    print(f"[{KIND}] {len(data.subjects)} subjects, {data.shape}, {s['iterations']} steps per scheme, "
          f"labels {'yes' if data.moving_labels is not None else 'no (Dice NaN)'}", flush=True)
    rows = []
    for scheme in ("baseline", "m2m_reg"):
        torch.manual_seed(seed)                       # the same initial weights for both schemes
        m = build_method("m2m_reg", ndim, {**cfg, "seed": seed}, dev)
        objective = m.objective(data)
        objective.with_labels = True
        chain = m.nets["net"].net
        opt = torch.optim.Adam(m.nets.parameters(), lr=s["lr"])
        rng = np.random.default_rng(seed)             # the same pairs for both schemes
        m.nets.train()
        for it in range(1, s["iterations"] + 1):
            batch = to_device(objective.sample(data, rng, s["batch_size"]), dev)
            if scheme == "baseline":
                terms = gradicon_terms(chain, batch["A"], batch["B"], objective.lncc, s["baseline_lambda"], True)
            else:
                terms = objective(m.nets, batch)
            values = check_finite_terms(f"{KIND} {scheme}", it, terms)
            opt.zero_grad(set_to_none=True)
            terms["loss"].backward()
            opt.step()
            if it % s["every"] and it != 1 and it != s["iterations"]:
                continue
            with torch.no_grad():
                a, b = batch["A"], batch["B"]
                ident = identity01(a.shape[2:], a.device, a.dtype)
                phi = chain(a, b)(ident)
                lncc = float(objective.lncc.similarity(sample01(a, phi, "zeros"), b))
                dice = float("nan")
                if "A_labels" in batch:
                    grid = (phi * 2 - 1).flip(1).permute(0, *range(2, phi.ndim), 1)
                    warped = F.grid_sample(batch["A_labels"].float(), grid, mode="nearest", padding_mode="zeros",
                                           align_corners=True)
                    dice = float(np.nanmean([mean_dice(w, t) for w, t in zip(warped, batch["B_labels"].float())]))
            rows.append({"scheme": scheme, "iteration": it, "loss": values["loss"], "lncc": lncc, "dice": dice})
            print(f"[{KIND}] {scheme} iter {it}/{s['iterations']} loss {values['loss']:.4f} "
                  f"LNCC {lncc:.4f} Dice {dice:.4f}", flush=True)
    with atomic_path(Path(out)) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    last = {r["scheme"]: r for r in rows}
    return {"iterations": s["iterations"], "labels": data.moving_labels is not None,
            **{f"{k}_last_dice": v["dice"] for k, v in last.items()},
            **{f"{k}_last_lncc": v["lncc"] for k, v in last.items()}}

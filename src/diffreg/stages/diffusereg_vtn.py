"""Stage kind `diffusereg_vtn`: DiffuseReg's phi0, the official lowRes VTN (nets.vtn_lowres: affine
stem + 3 cascades), trained on the study's training pairs with its official loss
(`train_bootstrap.py`, `loss.py:279-323`):

    1 - SSIM(warp(M, phi), F)  (3D Gaussian window 15, sigma 2.5, data range 2, reflect padding)
    + 1.1 det + 1.1 ortho of the affine stem's W + I   (the code sums every key ending in "loss",
      so the 0.1-weighted terms count once more at weight 1: effective 1.1)
    + sum over the deformable cascades of the L2 gradient of their flows (weight 1)

Adam 1e-4, batch 2, images in [-1, 1] (the official loader), ES moving -> ED fixed, the array
axes reversed (`axes: zyx`, the official SimpleITK layout, as the method sees them). The file is
the official checkpoint layout {"cascade <i>": state} (+ "epoch"), so the official E2000.pth can
replace it (`param`). The VTN's grid is the training images' shape padded to multiples of 16.
"""
from __future__ import annotations

from pathlib import Path

from diffreg.errors import InputError
from diffreg.io import atomic_path
from diffreg.training.config import TrainerConfig

from .registry import check_config, register

KIND = "diffusereg_vtn"
SETTINGS = {
    "iterations": 200000,     # official: 2000 epochs x 50 steps (100 pairs, batch 2)
    "batch": 2,
    "lr": 1e-4,
    "channels": 16,
    "cascades": 3,
    "augment": True,          # the official loader's flips / transposition in training
    "axes": "zyx",            # the layout the VTN sees: as the method's `axes` (zyx: slices first, official)
    "moving": None,           # the training modalities where the plan does not pass them (ES -> ED)
    "fixed": None,
}


def det_ortho(W):
    """The official det_ortho_loss of A = W + I: sum_b (det A - 1)^2 / 2, and the orthogonality
    term s1 + (1 + e)^2 s2 / s3 - 6 (1 + e) of C = A^T A + e I (e = 1e-5), summed over the batch."""
    import torch

    eps = 1e-5
    A = W + torch.eye(3, dtype=W.dtype, device=W.device)
    det = torch.linalg.det(A)
    det_loss = ((det - 1) ** 2).sum() / 2
    C = A.transpose(1, 2) @ A + eps * torch.eye(3, dtype=W.dtype, device=W.device)
    s1 = C.diagonal(dim1=1, dim2=2).sum(-1)
    s2 = 0.5 * (s1 ** 2 - (C * C.transpose(1, 2)).sum(dim=(1, 2)))
    s3 = torch.linalg.det(C)
    return det_loss, (s1 + (1 + eps) ** 2 * s2 / s3 - 3 * 2 * (1 + eps)).sum()


def vtn_loss(results, fixed):
    """loss_RCN with its effective weights (see the module docstring); returns (total, terms)."""
    from diffreg.methods.diffusereg import grad_l2, ssim_loss_reflect  # deferred: pulls in monai/torch

    det, ortho = det_ortho(results[0]["W"])
    reg = sum(grad_l2(r["flow"]) for r in results[1:])
    sim = ssim_loss_reflect(results[-1]["warped"], fixed, 15, 15 / 6, data_range=2.0)
    return 1.1 * det + 1.1 * ortho + reg + sim, {"sim": sim, "det": det, "ortho": ortho, "reg": reg}


@register(KIND, SETTINGS, uses_data=True)
def diffusereg_vtn(config: dict, out: Path, data, seed: int, device: str, threads: int) -> dict:
    import torch
    import torch.nn.functional as F
    from torch import nn

    # deferred: pulls in monai/torch
    from diffreg.device import resolve_device, set_threads
    from diffreg.methods.diffusereg import augment_pair, to_net
    from diffreg.training.objective import Objective
    from diffreg.training.trainer import Trainer
    from diffreg.nets.vtn_lowres import LowResVTN

    s = check_config(KIND, config)
    if data is None:
        raise InputError(f"{KIND} trains on the study's training pairs: give --data-dir and --subjects")
    if len(data.shape) != 3:
        raise InputError(f"{KIND}: the lowRes VTN is 3D, got images of shape {data.shape}")
    set_threads(threads)
    dev = resolve_device(device)
    if s["axes"] not in ("zyx", "xyz"):
        raise InputError(f"{KIND}: axes must be zyx or xyz, got {s['axes']!r}")
    shape = tuple(reversed(data.shape)) if s["axes"] == "zyx" else tuple(data.shape)
    grid = [-(-n // 16) * 16 for n in shape]
    pad = [v for n, g in zip(reversed(shape), reversed(grid)) for v in (0, g - n)]
    vtn = LowResVTN(grid, int(s["cascades"]), int(s["channels"])).to(dev)

    class VTNObjective(Objective):
        def sample(self, d, rng, batch_size):
            m, f = d.sample(rng, batch_size, False)
            return augment_pair(m, f, rng, s["axes"]) if s["augment"] else (m, f)

        def __call__(self, nets, batch):
            m, f = (F.pad(to_net(x, s["axes"]) * 2 - 1, pad) for x in batch)
            _, _, results = nets["vtn"](f, m)
            total, terms = vtn_loss(results, f)
            return {"loss": total, **terms}

    cfg = TrainerConfig(iterations=int(s["iterations"]), batch_size=int(s["batch"]), lr=float(s["lr"]), seed=seed,
                        log_every=max(1, int(s["iterations"]) // 10))
    summary = Trainer(cfg, dev, KIND).fit(nn.ModuleDict({"vtn": vtn}), VTNObjective(), data)
    with atomic_path(Path(out)) as tmp:
        torch.save({**{k: {n: v.cpu() for n, v in st.items()} for k, st in vtn.official_state().items()},
                    "epoch": int(s["iterations"])}, tmp)
    return {"grid": grid, "parameters": sum(p.numel() for p in vtn.parameters()), **summary}

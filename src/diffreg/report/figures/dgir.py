"""DGIR Fig. 1 (similarity heatmaps of one point under each measure) and Fig. 2 (feature
correspondences drawn as lines), from a diffusion feature model and two images.

With `aligned` (moving and fixed show the same anatomy in the same place, e.g. two contrasts of
one subject) the true match of a point is the point itself, and the CSVs give each measure's
match error in pixels. Both figures seed torch with `seed` before the model is built, so each
draws the same diffusion noise (and the same features) as when both came from one command.

torch is imported inside the functions: registering them must not cost torch's import time.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from diffreg.errors import InputError

from .dgir_plot import plot_correspondences, plot_heatmaps
from .files import write_csv
from .inputs import load_pair, parse_ints
from .registry import check_config, register

if TYPE_CHECKING:
    import torch

SETTINGS = {
    "feature_checkpoint": None,   # ADM checkpoint: official 256x256_diffusion_uncond.pt or a pretraining stage's
    "block": 29,                  # ADM block n (paper numbering)
    "t": 50,                      # diffusion timestep
    "sigma": None,                # LNCC window sigma in feature pixels [None: 4 x feature size / 64]
    "ensemble": 1,                # noise draws averaged per feature map
    "slice": None,                # 3D images: AXIS:INDEX of the slice shown [None: middle of axis 2]
    "point": None,                # Fig. 1 point I,J in the moving image [None: a boundary point]
    "keypoints": 12,              # Fig. 2 keypoints on the moving foreground
    "aligned": False,             # the pair is aligned: report match errors w.r.t. the identity
    "vgg_weights": None,          # optional VGG weights: adds a VGG heatmap to Fig. 1
    "dino_weights": None,         # optional DINO weights: adds a DINO heatmap to Fig. 1
}


@dataclass
class PairFeatures:
    """The two 2D images (H, W) and their diffusion features (C, H, W) at image resolution, on the CPU."""
    a: torch.Tensor
    b: torch.Tensor
    fa: torch.Tensor
    fb: torch.Tensor
    sigma: float      # LNCC window sigma in feature pixels
    stride: int       # image pixels per feature pixel
    where: str        # which slice is shown

    @property
    def sigma_px(self) -> float:
        return self.sigma * self.stride


def _settings(name: str, config: dict) -> dict:
    s = check_config(name, config)
    if not s["feature_checkpoint"]:
        raise InputError(f"figure {name} needs the setting feature_checkpoint (an ADM checkpoint)")
    for key, low in (("block", 0), ("t", 0), ("ensemble", 1), ("keypoints", 1)):
        if not isinstance(s[key], int) or isinstance(s[key], bool) or s[key] < low:
            raise InputError(f"figure {name}: {key} {s[key]!r} must be an integer >= {low}")
    return s


def diffusion_features(moving: Path, fixed: Path, s: dict, seed: int, device: str) -> PairFeatures:
    import torch

    # deferred: pulls in monai/torch
    from diffreg.device import resolve_device
    from diffreg.features.correspondence import resize_features
    from diffreg.features.diffusion import T_STEPS, DiffusionFeatures
    from diffreg.nets.adm import load_adm

    torch.manual_seed(seed)
    mov, fix, where = load_pair(moving, fixed, s["slice"])
    ckpt = Path(s["feature_checkpoint"])
    if not ckpt.exists():
        raise InputError(f"{ckpt}: diffusion checkpoint not found")
    adm = load_adm(ckpt)
    if s["block"] >= adm.num_blocks:
        raise InputError(f"block {s['block']}: the model has blocks 0..{adm.num_blocks - 1}")
    if s["t"] >= T_STEPS:
        raise InputError(f"t {s['t']}: timesteps are 0..{T_STEPS - 1}")
    dev = resolve_device(device)
    model = DiffusionFeatures(adm, block=s["block"], t=s["t"], noise="shared").to(dev)
    a, b = torch.from_numpy(mov).float(), torch.from_numpy(fix).float()
    fa = fb = 0
    with torch.no_grad():
        for _ in range(s["ensemble"]):
            x, y = model.pair(a[None, None].to(dev), b[None, None].to(dev))
            fa, fb = fa + x[0].cpu() / s["ensemble"], fb + y[0].cpu() / s["ensemble"]
    sigma = s["sigma"] or max(0.5, 4.0 * min(fa.shape[1:]) / 64)
    return PairFeatures(a, b, resize_features(fa, a.shape), resize_features(fb, b.shape),
                        float(sigma), model.stride, where)


def _error(q, p, aligned: bool):
    return float(np.hypot(q[0] - p[0], q[1] - p[1])) if aligned else ""


def _point(spec, a) -> tuple[int, int]:
    from diffreg.features import correspondence as corr  # deferred: pulls in monai/torch
    if spec is None:
        return corr.boundary_point(a)
    p = parse_ints(spec, 2, ",", "point")
    if not (0 <= p[0] < a.shape[0] and 0 <= p[1] < a.shape[1]):
        raise InputError(f"point {spec}: outside the image of shape {tuple(a.shape)}")
    return p


def heatmaps(f: PairFeatures, p, vgg_weights=None, dino_weights=None) -> dict:
    """Fig. 1: measure name -> map over the fixed image of its similarity to point p of the moving one."""
    # deferred: pulls in monai/torch
    from diffreg import features
    from diffreg.features import correspondence as corr

    a, b = f.a, f.b
    maps = {
        "MSE": corr.intensity_map(a, b, p),
        # image LNCC with the DGIR code's sigma 4 for 256 x 256 images, scaled to this size
        "LNCC": corr.window_ncc_map(a, b, p, sigma=max(0.5, 4.0 * (sum(a.shape) / 2) / 256)),
        "MIND": corr.mind_map(a, b, p),
        "NGF": corr.ngf_map(a, b, p),
        "Diffusion (cosine)": corr.cosine_map(f.fa, f.fb, p),
        "Diffusion + LNCC": corr.window_ncc_map(f.fa, f.fb, p, sigma=f.sigma_px),
    }
    for label, path, cls in (("VGG", vgg_weights, "VGGFeatures"), ("DINO", dino_weights, "DINOFeatures")):
        if path is not None:
            xa, xb = getattr(features, cls)(path).pair(a[None, None], b[None, None])
            maps[f"{label} (cosine)"] = corr.cosine_map(corr.resize_features(xa[0], a.shape),
                                                        corr.resize_features(xb[0], b.shape), p)
    return maps


@register("dgir.similarity_heatmaps", SETTINGS)
def similarity_heatmaps(moving: Path, fixed: Path, config: dict, outdir: Path, seed: int,
                        device: str) -> list[Path]:
    """Fig. 1: fig1_heatmaps.png, and fig1_heatmaps.csv (each measure's best match of the point)."""
    import torch

    from diffreg.features import correspondence as corr  # deferred: pulls in monai/torch

    s = _settings("dgir.similarity_heatmaps", config)
    f = diffusion_features(moving, fixed, s, seed, device)
    p = _point(s["point"], f.a)
    with torch.no_grad():
        maps = heatmaps(f, p, s["vgg_weights"], s["dino_weights"])
    rows = []
    for name, m in maps.items():
        q = corr.best_match(m)
        rows.append({"measure": name, "point_row": p[0], "point_col": p[1], "match_row": q[0],
                     "match_col": q[1], "error_px": _error(q, p, s["aligned"])})
    outdir = Path(outdir)
    files = [write_csv(outdir / "fig1_heatmaps.csv", rows),
             plot_heatmaps(f.a, f.b, p, {k: m.numpy() for k, m in maps.items()},
                           outdir / "fig1_heatmaps.png", f.where)]
    print(f"[dgir.similarity_heatmaps] point {p}, slice {f.where}, feature sigma {f.sigma:.3g} "
          f"(stride {f.stride})", flush=True)
    if s["aligned"]:
        print("[dgir.similarity_heatmaps] match error (px): "
              + ", ".join(f"{r['measure']} {r['error_px']:.2f}" for r in rows), flush=True)
    return files


@register("dgir.correspondences", SETTINGS)
def correspondences(moving: Path, fixed: Path, config: dict, outdir: Path, seed: int,
                    device: str) -> list[Path]:
    """Fig. 2: keypoints on the moving foreground matched in the fixed image by cosine (a) and by
    LNCC (b) of the features: fig2_correspondences.png and .csv."""
    import torch

    from diffreg.features import correspondence as corr  # deferred: pulls in monai/torch

    s = _settings("dgir.correspondences", config)
    f = diffusion_features(moving, fixed, s, seed, device)
    g = torch.Generator().manual_seed(seed)
    kps = corr.spread_points(f.a > 0.1 * f.a.max(), s["keypoints"], g)
    rows, matches = [], {"cosine": [], "lncc": []}
    with torch.no_grad():
        for k, kp in enumerate(kps):
            for variant, m in (("cosine", corr.cosine_map(f.fa, f.fb, kp)),
                               ("lncc", corr.window_ncc_map(f.fa, f.fb, kp, sigma=f.sigma_px))):
                q = corr.best_match(m)
                matches[variant].append(q)
                rows.append({"keypoint": k, "variant": variant, "row": kp[0], "col": kp[1],
                             "match_row": q[0], "match_col": q[1], "error_px": _error(q, kp, s["aligned"])})
    outdir = Path(outdir)
    files = [write_csv(outdir / "fig2_correspondences.csv", rows),
             plot_correspondences(f.a, f.b, kps, matches, outdir / "fig2_correspondences.png")]
    if s["aligned"]:
        for v in ("cosine", "lncc"):
            err = np.mean([r["error_px"] for r in rows if r["variant"] == v])
            print(f"[dgir.correspondences] {v}: mean match error {err:.2f} px over {len(kps)} keypoints", flush=True)
    return files

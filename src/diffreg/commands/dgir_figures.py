"""`diffreg dgir-figures`: DGIR Fig. 1 (similarity heatmaps of one point under each measure) and
Fig. 2 (feature correspondences drawn as lines), from a diffusion feature model and two images.

With --aligned (moving and fixed show the same anatomy in the same place, e.g. two contrasts of
one subject) the true match of a point is the point itself, and the CSVs give each measure's
match error in pixels.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from diffreg.errors import InputError
from diffreg.io import RunManifest, atomic_path, read_image

NAME = "dgir-figures"
HELP = "DGIR Fig. 1 (similarity heatmaps) and Fig. 2 (feature correspondences) for one image pair"


def add_arguments(p) -> None:
    p.add_argument("--moving", required=True, type=Path, help="moving image (NIfTI, 2D or 3D, intensities in [0,1])")
    p.add_argument("--fixed", required=True, type=Path, help="fixed image (NIfTI, same shape as moving)")
    p.add_argument("--feature-checkpoint", required=True, type=Path,
                   help="ADM checkpoint: official 256x256_diffusion_uncond.pt or from pretrain-diffusion")
    p.add_argument("--outdir", required=True, type=Path, help="output folder")
    p.add_argument("--block", type=int, default=29, help="ADM block n (paper numbering)")
    p.add_argument("--t", type=int, default=50, help="diffusion timestep")
    p.add_argument("--sigma", type=float, default=None,
                   help="Gaussian window sigma of LNCC in feature pixels [default: 4 x feature size / 64]")
    p.add_argument("--ensemble", type=int, default=1, help="noise draws averaged per feature map")
    p.add_argument("--slice", default=None, help="for 3D images, AXIS:INDEX of the slice shown [default: middle of axis 2]")
    p.add_argument("--point", default=None, help="Fig. 1 point I,J (array indices) in the moving image [default: a boundary point]")
    p.add_argument("--keypoints", type=int, default=12, help="Fig. 2 keypoints on the moving foreground")
    p.add_argument("--aligned", action="store_true", help="the pair is aligned: report match errors w.r.t. the identity")
    p.add_argument("--vgg-weights", type=Path, default=None, help="optional VGG weights: adds a VGG heatmap")
    p.add_argument("--dino-weights", type=Path, default=None, help="optional DINO weights: adds a DINO heatmap")
    p.add_argument("--seed", type=int, default=0, help="random seed (noise, keypoints)")


def _load_2d(path: Path, slice_spec: str | None) -> tuple[np.ndarray, str]:
    arr, _ = read_image(path)
    if arr.ndim == 2:
        return arr, "2d"
    if arr.ndim != 3:
        raise InputError(f"{path}: expected a 2D or 3D image, got shape {arr.shape}")
    axis, index = 2, arr.shape[2] // 2
    if slice_spec:
        try:
            axis, index = (int(v) for v in slice_spec.split(":"))
        except ValueError:
            raise InputError(f"--slice {slice_spec}: expected AXIS:INDEX") from None
        if not (0 <= axis < 3 and 0 <= index < arr.shape[axis]):
            raise InputError(f"--slice {slice_spec}: outside the image of shape {arr.shape}")
    return np.take(arr, index, axis=axis), f"axis{axis}:{index}"


def _features(model, a: torch.Tensor, b: torch.Tensor, ensemble: int):
    from diffreg.features.correspondence import resize_features
    fa = fb = 0
    for _ in range(ensemble):
        x, y = model.pair(a[None, None], b[None, None])
        fa, fb = fa + x[0] / ensemble, fb + y[0] / ensemble
    return fa, fb, resize_features(fa, a.shape), resize_features(fb, b.shape)


def run(args) -> int:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from diffreg.features import correspondence as corr
    from diffreg.features.diffusion import DiffusionFeatures
    from diffreg.nets.adm import load_adm

    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    mov, where = _load_2d(args.moving, args.slice)
    fix, _ = _load_2d(args.fixed, args.slice)
    if mov.shape != fix.shape:
        raise InputError(f"{args.fixed}: shape {fix.shape} differs from the moving image's {mov.shape}")
    if not args.feature_checkpoint.exists():
        raise InputError(f"{args.feature_checkpoint}: diffusion checkpoint not found")
    adm = load_adm(args.feature_checkpoint)
    if not 0 <= args.block < adm.num_blocks:
        raise InputError(f"--block {args.block}: the model has blocks 0..{adm.num_blocks - 1}")
    model = DiffusionFeatures(adm, block=args.block, t=args.t, noise="shared")
    a, b = torch.from_numpy(mov).float(), torch.from_numpy(fix).float()
    manifest = RunManifest(NAME, vars(args), seed=args.seed)

    with torch.no_grad():
        fa_small, fb_small, fa, fb = _features(model, a, b, args.ensemble)
        sigma = args.sigma or max(0.5, 4.0 * min(fa_small.shape[1:]) / 64)
        sigma_px = sigma * model.stride
        if args.point:
            try:
                p = tuple(int(v) for v in args.point.split(","))
            except ValueError:
                raise InputError(f"--point {args.point}: expected I,J") from None
            if not (0 <= p[0] < a.shape[0] and 0 <= p[1] < a.shape[1]):
                raise InputError(f"--point {args.point}: outside the image of shape {tuple(a.shape)}")
        else:
            p = corr.boundary_point(a)
        # Fig. 1: one map per measure
        maps = {
            "MSE": corr.intensity_map(a, b, p),
            # image LNCC with the DGIR code's sigma 4 for 256 x 256 images, scaled to this size
            "LNCC": corr.window_ncc_map(a, b, p, sigma=max(0.5, 4.0 * (sum(a.shape) / 2) / 256)),
            "MIND": corr.mind_map(a, b, p),
            "NGF": corr.ngf_map(a, b, p),
            "Diffusion (cosine)": corr.cosine_map(fa, fb, p),
            "Diffusion + LNCC": corr.window_ncc_map(fa, fb, p, sigma=sigma_px),
        }
        for label, path, cls in (("VGG", args.vgg_weights, "VGGFeatures"), ("DINO", args.dino_weights, "DINOFeatures")):
            if path is not None:
                from diffreg import features
                fm = getattr(features, cls)(path)
                xa, xb = fm.pair(a[None, None], b[None, None])
                maps[f"{label} (cosine)"] = corr.cosine_map(corr.resize_features(xa[0], a.shape),
                                                            corr.resize_features(xb[0], b.shape), p)
        rows1 = []
        for name, m in maps.items():
            q = corr.best_match(m)
            err = float(np.hypot(q[0] - p[0], q[1] - p[1])) if args.aligned else ""
            rows1.append({"measure": name, "point_row": p[0], "point_col": p[1], "match_row": q[0],
                          "match_col": q[1], "error_px": err})
        # Fig. 2: keypoints on the moving foreground, matched by cosine (a) and by LNCC (b)
        kps = corr.spread_points(a > 0.1 * a.max(), args.keypoints, g)
        rows2, matches = [], {"cosine": [], "lncc": []}
        for k, kp in enumerate(kps):
            for variant, m in (("cosine", corr.cosine_map(fa, fb, kp)),
                               ("lncc", corr.window_ncc_map(fa, fb, kp, sigma=sigma_px))):
                q = corr.best_match(m)
                matches[variant].append(q)
                err = float(np.hypot(q[0] - kp[0], q[1] - kp[1])) if args.aligned else ""
                rows2.append({"keypoint": k, "variant": variant, "row": kp[0], "col": kp[1],
                              "match_row": q[0], "match_col": q[1], "error_px": err})

    args.outdir.mkdir(parents=True, exist_ok=True)
    _write_csv(args.outdir / "fig1_heatmaps.csv", rows1)
    _write_csv(args.outdir / "fig2_correspondences.csv", rows2)
    _plot_fig1(plt, a, b, p, maps, args.outdir / "fig1_heatmaps.png", where)
    _plot_fig2(plt, a, b, kps, matches, args.outdir / "fig2_correspondences.png")
    summary = {"point": list(p), "sigma_feature_px": sigma, "stride": model.stride, "slice": where}
    if args.aligned:
        summary["fig1_error_px"] = {r["measure"]: r["error_px"] for r in rows1}
        for v in ("cosine", "lncc"):
            summary[f"fig2_mean_error_px_{v}"] = float(np.mean([r["error_px"] for r in rows2 if r["variant"] == v]))
    manifest.update(**summary)
    manifest.write(args.outdir / "run.json")
    print(f"[dgir-figures] wrote {args.outdir}/fig1_heatmaps.png, fig2_correspondences.png", flush=True)
    for k, v in summary.items():
        print(f"[dgir-figures] {k}: {v}", flush=True)
    return 0


def _write_csv(path: Path, rows: list[dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


# arrays are (x, y) in RAS order: shown transposed with origin lower, so x runs right and y up
def _show(ax, img, title):
    ax.imshow(np.asarray(img).T, cmap="gray", origin="lower")
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def _plot_fig1(plt, a, b, p, maps, path, where):
    n = len(maps)
    fig, axes = plt.subplots(2, max(n, 2), figsize=(2.2 * max(n, 2), 4.6))
    for ax in axes[0]:
        ax.axis("off")
    _show(axes[0, 0], a, f"moving ({where})")
    axes[0, 0].plot(p[0], p[1], "r.", ms=9)
    _show(axes[0, 1], b, "fixed")
    for ax, (name, m) in zip(axes[1], maps.items()):
        ax.imshow(m.numpy().T, cmap="jet", origin="lower")
        q = divmod(int(torch.argmax(m)), m.shape[1])
        ax.plot(q[0], q[1], "w+", ms=8)
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    for ax in axes[1][n:]:
        ax.axis("off")
    fig.suptitle("Fig. 1: similarity of every fixed pixel to the red point (white +: best)", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def _plot_fig2(plt, a, b, kps, matches, path):
    w = a.shape[0]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4 * a.shape[1] / a.shape[0] + 0.8))
    colours = plt.cm.hsv(np.linspace(0, 1, len(kps), endpoint=False))
    for ax, (variant, title) in zip(axes, (("cosine", "(a) diffusion features, cosine"),
                                           ("lncc", "(b) diffusion features + LNCC"))):
        ax.imshow(np.concatenate([a.numpy(), b.numpy()], axis=0).T, cmap="gray", origin="lower")
        for c, kp, q in zip(colours, kps, matches[variant]):
            ax.plot([kp[0], q[0] + w], [kp[1], q[1]], "-", color=c, lw=1)
            ax.plot(kp[0], kp[1], "o", color=c, ms=3)
            ax.plot(q[0] + w, q[1], "o", color=c, ms=3)
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    fig.suptitle("Fig. 2: for each moving keypoint (left), the most similar fixed pixel (right)", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)

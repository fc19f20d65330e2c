"""Throughput of the registration core against MONAI, side by side.

    python benchmarks/core.py [--size 64] [--train-size 64] [--repeats 3] [--threads N] [--device cpu|cuda]

Each time is the best of ``--repeats`` runs after one warm-up run (excluded); ours and MONAI's runs
alternate, so both see the same background load, and the minimum is the least disturbed run. On
CUDA every timed region ends with torch.cuda.synchronize(). Each row prints our time, MONAI's time
and speed-up = MONAI time / our time (> 1: ours is faster). MIND has no MONAI counterpart, so only its
throughput is printed. The VoxelMorph row is one training step (forward, warp, LNCC + diffusion
loss, backward, Adam update) of the VoxelMorph-2 U-Net with a displacement output, ours against
MONAI's VoxelMorph with the same widths and integration_steps=0.
"""
from __future__ import annotations

import argparse
import time
import warnings

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _once(fn, device) -> float:
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def compare(ours, theirs, repeats: int, device: torch.device):
    """Best-of-``repeats`` times of ``ours`` and ``theirs`` (None: ours alone), runs interleaved."""
    fns = [ours] if theirs is None else [ours, theirs]
    for fn in fns:
        fn()  # warm-up, excluded
        _sync(device)
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            best[i] = min(best[i], _once(fn, device))
    return tuple(best) if theirs is not None else (best[0], None)


def smooth_field(shape, amp, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn((1, len(shape)) + tuple(max(2, s // 8) for s in shape), generator=g)
    u = torch.nn.functional.interpolate(coarse, size=shape, mode="trilinear", align_corners=True)
    return (amp * u / u.abs().max()).to(device)


def row(name, ours, theirs=None, unit="s"):
    if theirs is None:
        print(f"{name:<46} {ours:10.4f} {unit} {'-':>12} {'-':>9}")
    else:
        print(f"{name:<46} {ours:10.4f} {unit} {theirs:10.4f} {unit} {theirs / ours:8.2f}x")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=64, help="edge of the cubic volume for warp/LNCC/MIND")
    p.add_argument("--train-size", type=int, default=64, help="edge of the cubic volume for the training step")
    p.add_argument("--batch", type=int, default=1, help="batch size for warp/LNCC/MIND")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (best reported)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    p.add_argument("--seed", type=int, default=0, help="seed for the synthetic data and weights")
    args = p.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    warnings.filterwarnings("ignore", module="monai")
    device = torch.device(args.device)

    from monai.losses import LocalNormalizedCrossCorrelationLoss
    from monai.networks.blocks import Warp
    from monai.networks.nets import VoxelMorph as MonaiVoxelMorph
    from monai.networks.nets import VoxelMorphUNet as MonaiVoxelMorphUNet

    from diffreg import spatial
    from diffreg.losses import build_regulariser, build_similarity
    from diffreg.losses.mind import mind_ssc
    from diffreg.nets import build_backbone

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device {name}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"best of {args.repeats} interleaved runs after 1 warm-up")
    print(f"{'operation':<46} {'ours':>12} {'MONAI':>12} {'speed-up':>9}")

    s = (args.size,) * 3
    img = torch.rand((args.batch, 1) + s, device=device)
    fix = torch.rand((args.batch, 1) + s, device=device)
    disp = torch.cat([smooth_field(s, 4.0, device, seed=i) for i in range(args.batch)])
    tag = f"{args.batch}x1x{args.size}^3"

    # warp: forward only, then forward + backward to the field
    monai_warp = Warp(mode="bilinear", padding_mode="border").to(device)
    with torch.no_grad():
        row(f"warp linear fwd {tag}", *compare(lambda: spatial.warp(img, disp), lambda: monai_warp(img, disp),
                                                 args.repeats, device))
    d = disp.clone().requires_grad_()

    def ours_warp_bwd():
        spatial.warp(img, d).sum().backward()

    def monai_warp_bwd():
        monai_warp(img, d).sum().backward()

    row(f"warp linear fwd+bwd {tag}", *compare(ours_warp_bwd, monai_warp_bwd, args.repeats, device))

    # LNCC, box window 9: the MONAI-equivalent configuration, and our default (border-normalised)
    x = img.clone().requires_grad_()
    monai_lncc = LocalNormalizedCrossCorrelationLoss(spatial_dims=3, kernel_size=9, kernel_type="rectangular")
    ours_same = build_similarity("lncc", window="box", size=9, squared=True, border="zeros").to(device)
    ours_default = build_similarity("lncc", window="box", size=9).to(device)

    def run(loss):
        def f():
            x.grad = None
            loss(x, fix).backward()
        return f

    row(f"LNCC box9 fwd+bwd {tag} (cc^2, zero pad)", *compare(run(ours_same), run(monai_lncc), args.repeats, device))
    row(f"LNCC box9 fwd+bwd {tag} (cc, normalised)", *compare(run(ours_default), run(monai_lncc), args.repeats, device))
    monai_gauss = LocalNormalizedCrossCorrelationLoss(spatial_dims=3, kernel_size=9, kernel_type="gaussian")
    ours_gauss = build_similarity("lncc", window="gaussian", size=9, squared=True, border="zeros").to(device)
    row(f"LNCC gauss9 fwd+bwd {tag}", *compare(run(ours_gauss), run(monai_gauss), args.repeats, device))

    def mind_step():
        x.grad = None
        mind_ssc(x).mean().backward()

    row(f"MIND-SSC fwd+bwd {tag} (no MONAI)", *compare(mind_step, None, args.repeats, device))

    # one VoxelMorph training step at train-size^3, batch 1
    ts = (args.train_size,) * 3
    moving = torch.rand((1, 1) + ts, device=device)
    fixed = torch.rand((1, 1) + ts, device=device)
    lncc = build_similarity("lncc", window="box", size=9, squared=True, border="zeros").to(device)
    diffusion = build_regulariser("diffusion")

    ours_net = build_backbone("voxelmorph", 3, variant="vm2").to(device)
    ours_opt = torch.optim.Adam(ours_net.parameters(), lr=1e-4)

    def ours_step():
        ours_opt.zero_grad()
        u = ours_net(torch.cat([moving, fixed], 1))
        loss = lncc(spatial.warp(moving, u), fixed) + diffusion(u)
        loss.backward()
        ours_opt.step()

    backbone = MonaiVoxelMorphUNet(spatial_dims=3, in_channels=2, unet_out_channels=3,
                                   channels=(16, 32, 32, 32, 32, 32), final_conv_channels=(16, 16))
    monai_net = MonaiVoxelMorph(backbone=backbone, integration_steps=0, spatial_dims=3).to(device)
    monai_opt = torch.optim.Adam(monai_net.parameters(), lr=1e-4)
    monai_loss = LocalNormalizedCrossCorrelationLoss(spatial_dims=3, kernel_size=9, kernel_type="rectangular")

    def monai_step():
        monai_opt.zero_grad()
        warped, u = monai_net(moving, fixed)
        loss = monai_loss(warped, fixed) + diffusion(u)
        loss.backward()
        monai_opt.step()

    n_ours = sum(p.numel() for p in ours_net.parameters())
    n_monai = sum(p.numel() for p in monai_net.parameters())
    row(f"VoxelMorph-2 train step 1x{args.train_size}^3", *compare(ours_step, monai_step, args.repeats, device))
    print(f"(parameters: ours {n_ours}, MONAI {n_monai})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

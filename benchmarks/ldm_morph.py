"""LDM-Morph: ours against the official code, per training step, per registration and per feature
extraction, at 128 x 128, the official sizes (registration network, VQ autoencoder, LDM U-Net),
in one run; the ratios ours / official (below 1: ours faster).

    python benchmarks/ldm_morph.py --official /path/to/LDM-Morph [--device cuda] [--repeats 5] [--json out.json]

The official step is ``train.py``'s loop body with the official modules (``TransModels.LDMMorph``,
the vendored ``ldm`` VQ encoder and ``openaimodel.UNetModel``): encode both images, one q_sample at
t = 1 with one noise, two whole U-Net passes (``apply_model`` runs the decoder too), the network,
the warp, the latent of the warped image (detached, as the code), MSE + MSE + smoothness, Adam.
Ours is ``methods.ldm_morph`` (its default: the latent term's gradient through the encoder, which
costs one more encoder backward; ``--detach-latent`` times the code's variant) with the U-Net run
up to encoder block 11 only. A registration: features + network, no gradient. Identical random
weights on both sides (`benchmarks/ldm_morph_fidelity.py` shows the outputs agree).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ldm_morph_fidelity import load_official, official_vq_encoder, seeded  # noqa: E402
from random_weights import unit_gain  # noqa: E402

from diffreg.features.latent_diffusion import OFFICIAL_UNET, LatentDiffusion, scaled_linear_alphas_cumprod  # noqa: E402
from diffreg.methods.ldm_morph import LDMMorph, LDMMorphConfig  # noqa: E402
from diffreg.nets.adm import ADMUNet  # noqa: E402
from diffreg.nets.vq_autoencoder import OFFICIAL_VQ, VQAutoencoder  # noqa: E402

BLOCKS = ((0, 2), (3, 5), (6, 8), (9, 11))


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed_pair(ours, official, device, repeats, warmup=1):
    """Median seconds of each, the two run alternately (a shared machine's load hits both alike)."""
    for _ in range(warmup):
        ours(), official()
    times = {"ours": [], "official": []}
    for _ in range(repeats):
        for name, fn in (("ours", ours), ("official", official)):
            sync(device)
            t = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


class Official:
    """train.py's computations with the official modules."""

    def __init__(self, m, vq: nn.Module, unet: nn.Module, net: nn.Module, device):
        self.vq, self.unet, self.net, self.device = vq, unet, net, device
        self.abar = scaled_linear_alphas_cumprod().float().to(device)
        self.opt = torch.optim.Adam(net.parameters(), lr=1e-4)

    def encode(self, x):
        with torch.no_grad():
            return self.vq["quant_conv"](self.vq["encoder"](x))

    def features(self, x, y):
        with torch.no_grad():
            mz, fz = self.encode(x), self.encode(y)
            noise = torch.randn_like(mz)
            a = self.abar[1]
            t = torch.tensor([1], device=self.device)
            outx = self.unet(a.sqrt() * mz + (1 - a).sqrt() * noise, t)[1][0]
            outy = self.unet(a.sqrt() * fz + (1 - a).sqrt() * noise, t)[1][0]
            return [torch.cat((outx[i], outx[j], outy[i], outy[j]), 1) for i, j in BLOCKS], fz

    @staticmethod
    def warp(x, flow):
        h, w = x.shape[-2:]
        gh, gw = torch.meshgrid(torch.linspace(-1, 1, h, device=x.device), torch.linspace(-1, 1, w, device=x.device),
                                indexing="ij")
        grid = torch.stack((gw + flow[:, 1], gh + flow[:, 0]), 3)
        return F.grid_sample(x, grid, mode="bilinear", align_corners=True, padding_mode="border")

    @staticmethod
    def smooth(u):
        h, w = u.shape[-2:]
        dx = torch.abs(u[:, :, 1:, :] - u[:, :, :-1, :]) / 2 * h
        dz = torch.abs(u[:, :, :, 1:] - u[:, :, :, :-1]) / 2 * w
        return (torch.mean(dx * dx) + torch.mean(dz * dz)) / 2.0

    def step(self, x, y, beta=0.6):
        feats, fix_z = self.features(x, y)          # fix_z: train.py's, computed before the features
        flow = self.net(x, y, *feats)
        warped = self.warp(x, flow)
        mov_z = self.encode(warped).detach()
        loss = beta * F.mse_loss(warped, y) + (1 - beta) * F.mse_loss(mov_z, fix_z) + 0.01 * self.smooth(flow)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()

    def register(self, x, y):
        with torch.no_grad():
            return self.net(x, y, *self.features(x, y)[0])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", required=True, type=Path)
    ap.add_argument("--extra-path", type=Path, action="append", default=[])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--detach-latent", action="store_true", help="ours with the official detached latent term")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    m = load_official(args.official, args.extra_path)

    # identical random weights: ours first, copied into the official modules
    vq, unet = VQAutoencoder(OFFICIAL_VQ), ADMUNet(OFFICIAL_UNET)
    unit_gain(vq, 1)
    unit_gain(unet, 2)
    ldm = LatentDiffusion(vq, unet)
    method = LDMMorph(2, LDMMorphConfig(detach_latent=args.detach_latent, ldm_arch={
        "vq": vq.config.to_dict(), "unet": unet.config.to_dict()}), device)
    method.nets["ldm"].load_state_dict(ldm.state_dict())
    unit_gain(method.nets["net"], 3, ("reg_head",), 0.1)
    off_vq = official_vq_encoder(m, OFFICIAL_VQ)
    off_vq.load_state_dict(vq.state_dict(), strict=True)
    off_unet = m.openaimodel.UNetModel(image_size=32, in_channels=1, out_channels=1, model_channels=64,
                                       attention_resolutions=[8, 4, 2], num_res_blocks=2, channel_mult=[1, 2, 3, 4],
                                       num_head_channels=32)
    off_unet.load_state_dict(unet.state_dict(), strict=True)
    off_net = m.LDMMorph.LDMMorph(256, 384, 640, 896)
    off_net.load_state_dict(method.nets["net"].state_dict(), strict=True)
    official = Official(m, off_vq.to(device).eval(), off_unet.to(device).eval(), off_net.to(device), device)
    opt = torch.optim.Adam(method.nets["net"].parameters(), lr=1e-4)

    x, y = seeded((1, 1, 128, 128), 1).to(device), seeded((1, 1, 128, 128), 2).to(device)

    def ours_step():
        terms = method.loss_terms(method.nets, x, y)
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()

    def ours_features():
        with torch.no_grad():
            method.nets["ldm"].features(x, y)

    method.nets.train()
    official.net.train()
    report = {"device": str(device), "threads": torch.get_num_threads(), "detach_latent": args.detach_latent}
    report["step_s"] = timed_pair(ours_step, lambda: official.step(x, y), device, args.repeats)
    method.nets.eval()
    official.net.eval()
    report["register_s"] = timed_pair(lambda: method.register(x, y), lambda: official.register(x, y), device,
                                      args.repeats)
    report["features_s"] = timed_pair(ours_features, lambda: official.features(x, y), device, args.repeats)
    for k in ("step_s", "register_s", "features_s"):
        report[k]["ratio_ours_over_official"] = report[k]["ours"] / report[k]["official"]
    report["features_share_of_registration"] = report["features_s"]["ours"] / report["register_s"]["ours"]
    print(f"device {device}, {report['threads']} threads, detach_latent {args.detach_latent}, "
          f"median of {args.repeats}, alternating (128 x 128, batch 1):")
    for k, what in (("step_s", "training step"), ("register_s", "registration"), ("features_s", "features per pair")):
        r = report[k]
        print(f"  {what:18s} ours {r['ours'] * 1e3:8.1f} ms  official {r['official'] * 1e3:8.1f} ms  "
              f"ratio {r['ratio_ours_over_official']:.2f}")
    print(f"  features are {100 * report['features_share_of_registration']:.0f}% of our registration")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

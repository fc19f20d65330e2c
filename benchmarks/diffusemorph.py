"""DiffuseMorph against its official code (boahK/DiffuseMorph), on identical weights and inputs.

    python benchmarks/diffusemorph.py --official /path/to/DiffuseMorph \
        [--write-fixtures tests/fixtures/diffusemorph] [--write-checkpoint-fixture DIR] [--time]

The official files are imported from their checkout (never part of diffreg); they need `einops`
(pip install einops, or --extra-path to a folder holding it) and call `.cuda()`, which is made a
no-op on a machine without a GPU. Prints, in 2D and 3D:
  - the diffusion U-Net: parameter names and shapes equal, strict load, largest output difference
    at the official sizes (2D 64 channels at 128^2; 3D 8 channels at 128 x 128 x 32);
  - the deformation network: the same for the field and the warped image;
  - the training loss of one step (MSE(eps, eps-hat) + lambda (-NCC^2 + grad-l2)) on identical
    inputs, noise and timestep;
  - the official Dice's label resampling (main_3D.py, on core/metrics.py transform_grid) against
    diffreg.metrics_official on a random label map and field: voxels that differ (0 expected);
  - with --time: seconds per training step and per registration, official vs ours (CPU).
With --write-fixtures it writes the small fixtures tests/unit/test_diffusemorph.py uses; with
--write-checkpoint-fixture, a small 3D checkpoint in the official layout (what the official
`save_network` writes: the GaussianDiffusion's state dict, `denoise_fn.*`, `field_fn.*` and the
schedule's buffers) and the official networks' outputs on seeded inputs, for
tests/unit/test_diffusemorph_official.py.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from diffreg.methods.diffusemorph import DiffuseMorph  # noqa: E402
from diffreg.nets.diffusemorph_field import OFFICIAL as FIELD, DeformationUNet  # noqa: E402
from diffreg.nets.sr3_unet import OFFICIAL as UNET, SR3UNet  # noqa: E402

# small widths for the fixtures (GroupNorm needs multiples of 32 in 2D, 4 in 3D)
SMALL_UNET = {2: dict(UNET[2], inner_channel=32, channel_mults=(1, 2), attn_res=(8,), image_size=16),
              3: dict(UNET[3], inner_channel=4, channel_mults=(1, 2), attn_res=(8,), image_size=16)}
SMALL_FIELD = {2: dict(in_channel=2, encoder_nc=(4, 4, 4, 4, 4), decoder_nc=(4, 4, 4, 4, 4, 2)),
               3: dict(in_channel=2, encoder_nc=(4, 4, 4, 4, 4), decoder_nc=(4, 4, 4, 4, 4, 3))}
FULL_SHAPE = {2: (128, 128), 3: (128, 128, 32)}
SMALL_SHAPE = {2: (16, 16), 3: (16, 16, 16)}


def seeded(shape, seed, low=-1.0, high=1.0):
    g = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(shape, generator=g)


def randomise(module: torch.nn.Module, seed: int) -> None:
    """Random weights of a scale that keeps activations O(1) (the official init zeroes biases)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            fan = p[0].numel() if p.ndim > 1 else 1
            p.copy_((torch.rand(p.shape, generator=g) - 0.5) * (2.0 / fan ** 0.5 if p.ndim > 1 else 0.2))


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def load_official(root: Path, extra_path: Path | None):
    if extra_path:
        sys.path.insert(0, str(extra_path))
    if not torch.cuda.is_available():
        torch.Tensor.cuda = lambda self, *a, **k: self       # the official layers call .cuda()
    mods = {}
    for nd in (2, 3):
        pkg = f"dm_off_diffusion_{nd}d"
        sys.modules[pkg] = types.ModuleType(pkg)
        sys.modules[pkg].__path__ = [str(root / f"model/diffusion_net_{nd}D")]
        loss = _load(root / f"model/diffusion_net_{nd}D/loss.py", f"{pkg}.loss")
        mods[nd] = dict(unet=_load(root / f"model/diffusion_net_{nd}D/unet.py", f"{pkg}.unet"), loss=loss,
                        diffusion=_load(root / f"model/diffusion_net_{nd}D/diffusion.py", f"{pkg}.diffusion"),
                        field=_load(root / f"model/deformation_net_{nd}D.py", f"dm_off_field_{nd}d"))
    return mods


def official_unet(mods, nd, cfg):
    size = cfg["image_size"] if nd == 2 else [cfg["image_size"], cfg["image_size"], 32]
    return mods[nd]["unet"].UNet(in_channel=cfg["in_channel"], out_channel=cfg["out_channel"],
                                 inner_channel=cfg["inner_channel"], channel_mults=cfg["channel_mults"],
                                 attn_res=cfg["attn_res"], res_blocks=cfg["res_blocks"], image_size=size)


def pair(nd, official_unet_mod, ours_unet, official_field, ours_field):
    names = lambda m: [(k, tuple(v.shape)) for k, v in m.state_dict().items()]  # noqa: E731
    return names(official_unet_mod) == names(ours_unet) and names(official_field) == names(ours_field)


def official_field(mods, nd, cfg):
    return mods[nd]["field"].registUnetBlock(cfg["in_channel"], list(cfg["encoder_nc"]), list(cfg["decoder_nc"]))


def build_pair(mods, nd, ucfg, fcfg, seed):
    ou, of = official_unet(mods, nd, ucfg), official_field(mods, nd, fcfg)
    nu = SR3UNet(nd, **{k: v for k, v in ucfg.items()})
    nf = DeformationUNet(nd, **fcfg)
    same = pair(nd, ou, nu, of, nf)
    randomise(ou, seed), randomise(of, seed + 1)
    nu.load_state_dict(ou.state_dict(), strict=True)
    nf.load_state_dict(of.state_dict(), strict=True)
    for m in (ou, of, nu, nf):
        m.eval()
    return ou, of, nu, nf, same


def compare_nets(mods, nd, ucfg, fcfg, shape, report, key):
    ou, of, nu, nf, same = build_pair(mods, nd, ucfg, fcfg, 1)
    m, f, xt = (seeded((1, 1, *shape), s) for s in (2, 3, 4))
    t = torch.tensor([137])
    with torch.no_grad():
        eo, en = ou(torch.cat([m, f, xt], 1), t), nu(torch.cat([m, f, xt], 1), t)
        wo, fo = of(torch.cat([m, eo], 1))
        wn, fn = nf(torch.cat([m, eo], 1))
    out = dict(names_shapes_equal=same, unet_params=sum(p.numel() for p in nu.parameters()),
               field_params=sum(p.numel() for p in nf.parameters()),
               unet_max_abs_diff=(eo - en).abs().max().item(), unet_scale=eo.abs().max().item(),
               field_max_abs_diff=(fo - fn).abs().max().item(), field_scale=fo.abs().max().item(),
               warped_max_abs_diff=(wo - wn).abs().max().item(), shape=list(shape))
    report[key] = out
    print(f"{key}: names/shapes equal {same}; diffusion U-Net {out['unet_params']:,} parameters, max |diff| "
          f"{out['unet_max_abs_diff']:.3g} (output up to {out['unet_scale']:.3g}); deformation net "
          f"{out['field_params']:,} parameters, field max |diff| {out['field_max_abs_diff']:.3g} (up to "
          f"{out['field_scale']:.3g}), warped {out['warped_max_abs_diff']:.3g}")
    return ou, of, nu, nf


def official_loss(mods, nd, ou, of, lam, m, f, noise, t):
    gd = mods[nd]["diffusion"].GaussianDiffusion(ou, of, channels=1, loss_type="l2", conditional=True,
                                                  loss_lambda=lam)
    gd.set_loss("cpu")
    gd.set_new_noise_schedule(dict(schedule="linear", n_timestep=2000, linear_start=1e-6, linear_end=1e-2), "cpu")
    orig = torch.randint
    torch.randint = lambda *a, **k: t.clone()           # the official p_losses draws t itself
    try:
        _, (l_pix, l_sim, l_smt, loss) = gd.p_losses({"M": m, "F": f}, noise=noise)
    finally:
        torch.randint = orig
    return dict(pix=l_pix.item(), sim=l_sim.item(), smooth=l_smt.item(), loss=loss.item())


def our_loss(nd, nu, nf, lam, m, f, noise, t):
    method = DiffuseMorph(nd, {"network": "small", "lam": lam}, torch.device("cpu"))
    method.nets["unet"], method.nets["field"] = nu, nf
    with torch.no_grad():
        terms = method.loss_terms(method.nets, m, f, noise, t)
    return {k: float(v) for k, v in terms.items()}


def compare_loss(mods, nd, ucfg, fcfg, shape, lam, report, key):
    ou, of, nu, nf, _ = build_pair(mods, nd, ucfg, fcfg, 5)
    m, f, noise = seeded((1, 1, *shape), 6), seeded((1, 1, *shape), 7), torch.randn((1, 1, *shape),
                                                                                      generator=torch.Generator().manual_seed(8))
    t = torch.tensor([911])
    off = official_loss(mods, nd, ou, of, lam, m, f, noise, t)
    ours = our_loss(nd, nu, nf, lam, m, f, noise, t)
    diff = {k: abs(off[k] - ours[k]) for k in off}
    report[key] = dict(official=off, ours=ours, max_abs_diff=max(diff.values()), shape=list(shape), lam=lam)
    print(f"{key}: training loss official {off['loss']:.7f} (pix {off['pix']:.6f}, sim {off['sim']:.6f}, "
          f"smooth {off['smooth']:.3g}), ours {ours['loss']:.7f}; max |diff| over the terms {max(diff.values()):.3g}")


def write_fixtures(mods, out: Path, report):
    out.mkdir(parents=True, exist_ok=True)
    fixture = {}
    for nd in (2, 3):
        ou, of, nu, nf, _ = build_pair(mods, nd, SMALL_UNET[nd], SMALL_FIELD[nd], 11)
        shape = SMALL_SHAPE[nd]
        m, f, xt = (seeded((1, 1, *shape), s) for s in (12, 13, 14))
        noise = torch.randn((1, 1, *shape), generator=torch.Generator().manual_seed(15))
        t = torch.tensor([523])
        with torch.no_grad():
            eps = ou(torch.cat([m, f, xt], 1), t)
            warped, flow = of(torch.cat([m, eps], 1))
        loss = official_loss(mods, nd, ou, of, 20.0, m, f, noise, t)
        fixture[f"{nd}d"] = dict(unet=dict(SMALL_UNET[nd]), field=dict(SMALL_FIELD[nd]),
                                 unet_state={k: v.clone() for k, v in ou.state_dict().items()},
                                 field_state={k: v.clone() for k, v in of.state_dict().items()},
                                 seeds=[12, 13, 14, 15], t=523, eps=eps, warped=warped, flow=flow, loss=loss)
    names = {}
    for nd in (2, 3):
        ou, of = official_unet(mods, nd, UNET[nd]), official_field(mods, nd, FIELD[nd])
        names[f"{nd}d"] = {"unet": [[k, list(v.shape)] for k, v in ou.state_dict().items()],
                           "field": [[k, list(v.shape)] for k, v in of.state_dict().items()]}
    torch.save(fixture, out / "networks_small.pt")
    (out / "official_names.json").write_text(json.dumps(names))
    print(f"fixtures written to {out}")


def compare_official_label_warp(root: Path, report):
    """main_3D.py's resampling of the moving labels (deformed grid from core/metrics.py
    transform_grid, normalised by n - 1 per axis, F.grid_sample nearest with its default corners)
    against metrics_official.warp_labels_diffusemorph; arrays in the official (D, H, W) order."""
    import numpy as np
    import torch.nn.functional as F
    from diffreg.metrics_official import warp_labels_diffusemorph
    cm = _load(root / "core/metrics.py", "dm_off_core_metrics")
    shape = (16, 32, 24)
    g = torch.Generator().manual_seed(41)
    labels = torch.randint(0, 4, shape, generator=g).float()
    coarse = torch.randn((1, 3, 4, 4, 4), generator=g) * 3
    disp = F.interpolate(coarse, size=shape, mode="trilinear", align_corners=True)
    out = {}
    for name, field in (("random", disp), ("zero", torch.zeros_like(disp))):
        grid = cm.transform_grid(field[:, 0], field[:, 1], field[:, 2])
        norm = torch.stack([(grid[:, 2 - k] / (shape[2 - k] - 1) - 0.5) * 2 for k in range(3)], dim=-1)
        official = F.grid_sample(labels[None, None], norm, mode="nearest")[0, 0].numpy()
        ours = warp_labels_diffusemorph(labels.numpy().astype(np.int16), field[0].numpy())
        out[name] = dict(voxels_differing=int((official != ours).sum()),
                         changed_by_the_official_warp=float((official != labels.numpy()).mean()))
    report["official_label_warp"] = out
    print(f"official Dice's label resampling vs metrics_official ({shape}): voxels differing "
          f"{out['random']['voxels_differing']} (random field), {out['zero']['voxels_differing']} (zero field; "
          f"the zero field changes {100 * out['zero']['changed_by_the_official_warp']:.2f} % of the label map)")


def write_checkpoint_fixture(mods, out: Path, report):
    out.mkdir(parents=True, exist_ok=True)
    nd = 3
    ou, of = official_unet(mods, nd, SMALL_UNET[nd]), official_field(mods, nd, SMALL_FIELD[nd])
    randomise(ou, 31), randomise(of, 32)
    gd = mods[nd]["diffusion"].GaussianDiffusion(ou, of, channels=1, loss_type="l2", conditional=True,
                                                  loss_lambda=20)
    gd.set_new_noise_schedule(dict(schedule="linear", n_timestep=2000, linear_start=1e-6, linear_end=1e-2), "cpu")
    gd.eval()
    shape = SMALL_SHAPE[nd]
    m, f, xt = (seeded((1, 1, *shape), s) for s in (33, 34, 35))
    t = torch.tensor([777])
    with torch.no_grad():
        eps = ou(torch.cat([m, f, xt], 1), t)
        warped, flow = of(torch.cat([m, eps], 1))
    state = {k: v.cpu() for k, v in gd.state_dict().items()}
    torch.save(state, out / "I2_E1_gen_G.pth")
    torch.save(dict(unet=dict(SMALL_UNET[nd]), field=dict(SMALL_FIELD[nd]), seeds=[33, 34, 35], t=777,
                    eps=eps, warped=warped, flow=flow), out / "I2_E1_outputs.pt")
    extra = sorted(k for k in state if not k.startswith(("denoise_fn.", "field_fn.")))
    report["checkpoint_fixture"] = dict(keys=len(state), extra=extra)
    print(f"official-layout checkpoint written to {out}: {len(state)} keys, {len(extra)} outside the two "
          f"networks ({', '.join(extra)})")


def time_step(mods, nd, report):
    ou, of, nu, nf, _ = build_pair(mods, nd, UNET[nd], FIELD[nd], 21)
    shape = FULL_SHAPE[nd]
    m, f = seeded((1, 1, *shape), 22), seeded((1, 1, *shape), 23)
    noise, t = torch.randn((1, 1, *shape)), torch.tensor([500])
    for m_ in (ou, of, nu, nf):
        m_.train()

    def run(fn, reps=2):
        fn()
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        return (time.perf_counter() - t0) / reps

    gd = mods[nd]["diffusion"].GaussianDiffusion(ou, of, channels=1, loss_type="l2", loss_lambda=20)
    gd.set_loss("cpu")
    gd.set_new_noise_schedule(dict(schedule="linear", n_timestep=2000, linear_start=1e-6, linear_end=1e-2), "cpu")
    opt_o = torch.optim.Adam(list(ou.parameters()) + list(of.parameters()), 1e-4)

    def step_official():
        opt_o.zero_grad()
        gd.p_losses({"M": m, "F": f}, noise=noise)[1][-1].backward()
        opt_o.step()
    method = DiffuseMorph(nd, {"network": "official", "lam": 20.0, "etas": [1.0]}, torch.device("cpu"))
    method.nets["unet"], method.nets["field"] = nu, nf
    opt_n = torch.optim.Adam(method.nets.parameters(), 1e-4)

    def step_ours():
        opt_n.zero_grad()
        method.loss_terms(method.nets, m, f, noise, t)["loss"].backward()
        opt_n.step()
    so, sn = run(step_official), run(step_ours)
    for m_ in (ou, of, nu, nf):
        m_.eval()
    with torch.no_grad():
        # one field each (official: eta = 0 and 1 in 3D, where linspace(0, 1, 1) would give eta = 0 only)
        ro = run(lambda: gd.registration(torch.cat([m, f], 1), nsample=2 if nd == 3 else 1))
        rn = run(lambda: method.register(m, f))
    report[f"time_{nd}d"] = dict(step_official_s=so, step_ours_s=sn, register_official_s=ro, register_ours_s=rn,
                                 shape=list(shape))
    print(f"time {nd}D {shape} (CPU, {torch.get_num_threads()} threads): training step official {so:.2f} s, "
          f"ours {sn:.2f} s (ratio ours/official {sn / so:.2f}); registration official {ro:.2f} s, ours {rn:.2f} s")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", required=True, type=Path, help="checkout of github.com/boahK/DiffuseMorph")
    ap.add_argument("--extra-path", type=Path, default=None, help="folder with einops, if not installed")
    ap.add_argument("--write-fixtures", type=Path, default=None)
    ap.add_argument("--write-checkpoint-fixture", type=Path, default=None)
    ap.add_argument("--time", action="store_true", help="also time a training step and a registration")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    mods = load_official(args.official, args.extra_path)
    report: dict = {}
    for nd in (2, 3):
        compare_nets(mods, nd, UNET[nd], FIELD[nd], FULL_SHAPE[nd], report, f"official_size_{nd}d")
        compare_loss(mods, nd, SMALL_UNET[nd], SMALL_FIELD[nd], (32,) * nd, 20.0, report, f"loss_{nd}d")
    compare_official_label_warp(args.official, report)
    if args.write_fixtures:
        write_fixtures(mods, args.write_fixtures, report)
    if args.write_checkpoint_fixture:
        write_checkpoint_fixture(mods, args.write_checkpoint_fixture, report)
    if args.time:
        for nd in (2, 3):
            time_step(mods, nd, report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()

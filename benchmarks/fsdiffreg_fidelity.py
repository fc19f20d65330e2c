"""FSDiffReg against its official code (xmed-lab/FSDiffReg), on identical weights and inputs.

    python benchmarks/fsdiffreg_fidelity.py --official /path/to/FSDiffReg [--extra-path /tmp/bench_deps] \
        [--write-fixtures tests/fixtures/fsdiffreg] [--json out.json] [--skip-full]

The official files (model/diffusion_3D/{unet,loss,diffusion}.py) are imported from the checkout,
never copied into diffreg; they need `einops` (pip install --target /tmp/bench_deps einops, then
--extra-path /tmp/bench_deps) and matplotlib, and send tensors to 'cuda:0', which is redirected to
the CPU on a machine without a GPU. The official code is 3D only, so every comparison is 3D.
Prints:
  - the network at the official size (config/train_3D.json: 8 channels, mults 1 2 4 4, attention
    at 10, 128 x 128 x 32) and at a small size: parameter names and shapes equal, strict load of the
    official state dict into ours, largest difference of eps-hat and of the field;
  - one training step's loss (official GaussianDiffusion.p_losses with the same noise and t)
    against FSDiffReg.loss_terms: total, similarity and smoothness terms, the warped image;
  - the registration field (official `registration`: t = 0 on (M, F, F)).
Weights are regenerated from a seed (`randomise`), so the fixture holds only inputs' seeds and
outputs; tests/unit/test_fsdiffreg.py rebuilds the weights with the same function.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import sys
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from diffreg.methods import build_method  # noqa: E402
from diffreg.nets.fsdiffreg import OFFICIAL, FSDiffRegUNet  # noqa: E402

# small: final_conv_defm's official GroupNorm(3) needs inner_channel + 1 divisible by 3
SMALL = dict(OFFICIAL[3], inner_channel=8, channel_mults=(1, 2), attn_res=(8,), image_size=16)
SMALL_SHAPE = (16, 16, 16)
FULL_SHAPE = (128, 128, 32)
SEEDS = dict(weights=1, moving=2, fixed=3, xt=4, noise=5)
T = 137
LAM, GAMMA = 20.0, 1.0


def seeded(shape, seed, low=-1.0, high=1.0):
    g = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(shape, generator=g)


def randomise(module: torch.nn.Module, seed: int) -> None:
    """Uniform weights in sorted name order (the official and our modules share the names), of a
    scale that keeps activations O(1); norm weights around 1; the field layers scaled so that the
    fields are a few voxels."""
    g = torch.Generator().manual_seed(seed)
    params = dict(module.named_parameters())
    with torch.no_grad():
        for name in sorted(params):
            p = params[name]
            r = torch.rand(p.shape, generator=g) - 0.5
            if p.ndim > 1:
                p.copy_(r * 2.0 / p[0].numel() ** 0.5)
            elif ".norm." in name or name.endswith(("block.0.weight",)):
                p.copy_(1.0 + 0.2 * r)
            else:
                p.copy_(0.2 * r)
            if name.startswith("ups_adapt") and ".nonlinear." in name or name.startswith("final_conv_defm.block.3"):
                p.mul_(4.0)


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def load_official(root: Path, extra_path: Path | None):
    if extra_path:
        sys.path.insert(0, str(extra_path))
    pkg = "fsd_off_diffusion_3d"
    sys.modules[pkg] = types.ModuleType(pkg)
    sys.modules[pkg].__path__ = [str(root / "model/diffusion_3D")]
    return dict(unet=_load(root / "model/diffusion_3D/unet.py", f"{pkg}.unet"),
                loss=_load(root / "model/diffusion_3D/loss.py", f"{pkg}.loss"),
                diffusion=_load(root / "model/diffusion_3D/diffusion.py", f"{pkg}.diffusion"))


@contextlib.contextmanager
def cuda_on_cpu():
    """The official code calls .to('cuda:0'); on a machine without a GPU send those to the CPU."""
    if torch.cuda.is_available():
        yield
        return
    orig = torch.Tensor.to

    def to(self, *args, **kwargs):
        fix = lambda d: "cpu" if isinstance(d, str) and d.startswith("cuda") else d  # noqa: E731
        return orig(self, *(fix(a) for a in args), **{k: fix(v) for k, v in kwargs.items()})

    torch.Tensor.to = to
    try:
        yield
    finally:
        torch.Tensor.to = orig


def official_unet(mods, cfg, shape):
    # the official UNet counts attention resolutions from image_size[1]
    return mods["unet"].UNet(in_channel=cfg["in_channel"], out_channel=cfg["out_channel"],
                             inner_channel=cfg["inner_channel"], channel_mults=list(cfg["channel_mults"]),
                             attn_res=list(cfg["attn_res"]), res_blocks=cfg["res_blocks"], dropout=0,
                             image_size=[shape[0], cfg["image_size"], shape[2]], opt=None)


def build_pair(mods, cfg, shape, seed):
    off = official_unet(mods, cfg, shape)
    ours = FSDiffRegUNet(3, **cfg)
    names = lambda m: sorted((k, tuple(v.shape)) for k, v in m.state_dict().items())  # noqa: E731
    same = names(off) == names(ours)
    randomise(off, seed)
    ours.load_state_dict(off.state_dict(), strict=True)
    off.eval(), ours.eval()
    return off, ours, same


def inputs(shape):
    return tuple(seeded((1, 1, *shape), SEEDS[k]) for k in ("moving", "fixed", "xt", "noise"))


def compare_net(mods, cfg, shape, key, report):
    off, ours, same = build_pair(mods, cfg, shape, SEEDS["weights"])
    m, f, xt, _ = inputs(shape)
    t = torch.tensor([T])
    with torch.no_grad():
        eo, fo = off(torch.cat([m, f, xt], 1), m, t)
        en, fn = ours(torch.cat([m, f, xt], 1), t)
    out = dict(names_shapes_equal=same, parameters=sum(p.numel() for p in ours.parameters()), shape=list(shape),
               eps_max_abs_diff=(eo - en).abs().max().item(), eps_scale=eo.abs().max().item(),
               field_max_abs_diff=(fo - fn).abs().max().item(), field_scale=fo.abs().max().item())
    report[key] = out
    print(f"{key}: names/shapes equal {same}, strict load ok; {out['parameters']:,} parameters; eps-hat max |diff| "
          f"{out['eps_max_abs_diff']:.3g} (values up to {out['eps_scale']:.3g}); field max |diff| "
          f"{out['field_max_abs_diff']:.3g} (up to {out['field_scale']:.3g} voxels)")
    return off, ours, (eo, fo)


def official_step(mods, off, m, f, noise, t):
    gd = mods["diffusion"].GaussianDiffusion(off, mods["unet"].Dense3DSpatialTransformer(), channels=1,
                                             loss_type="l2", conditional=True, loss_lambda=LAM, gamma=GAMMA)
    gd.set_loss("cpu")
    gd.set_new_noise_schedule(dict(schedule="linear", n_timestep=2000, linear_start=1e-6, linear_end=1e-2), "cpu")
    orig = torch.randint
    torch.randint = lambda *a, **k: t.clone()           # p_losses draws t itself
    try:
        (_, warped, flow), (_, l_sim, l_smt, loss) = gd.p_losses({"M": m, "F": f}, noise=noise)
        reg_warped, reg_flow, _, _ = gd.registration(torch.cat([m, f], 1))
    finally:
        torch.randint = orig
    return dict(loss=loss.item(), sim=l_sim.item(), smooth=l_smt.item(), warped=warped.detach(),
                reg_flow=reg_flow, reg_warped=reg_warped)


def ours_step(cfg, ours, m, f, noise, t):
    method = build_method("fsdiffreg", 3, {"network": "small", "unet_kwargs": dict(cfg), "lam": LAM,
                                           "gamma": GAMMA}, torch.device("cpu"))
    method.nets["unet"].load_state_dict(ours.state_dict(), strict=True)
    method.nets.eval()
    with torch.no_grad():
        terms = method.loss_terms(method.nets, m, f, noise, t)
        _, flow = method.nets["unet"](torch.cat([m, f, method.q_sample(f, t, noise)], 1), t)
        warped = method.warp(m, flow)
    reg = method.field((m + 1) / 2, (f + 1) / 2)
    return {k: v.item() for k, v in terms.items()}, warped, reg, method


def compare_step(mods, cfg, shape, off, ours, report):
    m, f, _, noise = inputs(shape)
    t = torch.tensor([T])
    with torch.no_grad():
        o = official_step(mods, off, m, f, noise, t)
    terms, warped, reg, _ = ours_step(cfg, ours, m, f, noise, t)
    out = dict(loss_official=o["loss"], loss_ours=terms["loss"], loss_abs_diff=abs(o["loss"] - terms["loss"]),
               sim_abs_diff=abs(o["sim"] - terms["sim"]), smooth_abs_diff=abs(o["smooth"] - terms["smooth"]),
               warped_max_abs_diff=(o["warped"] - warped).abs().max().item(),
               registration_field_max_abs_diff=(o["reg_flow"] - reg).abs().max().item(),
               terms_official=dict(sim=o["sim"], smooth=o["smooth"], pix=o["loss"] - o["sim"] - o["smooth"]),
               terms_ours=terms)
    report["loss_small"] = out
    print(f"training step (small): loss official {o['loss']:.6f} ours {terms['loss']:.6f} (|diff| "
          f"{out['loss_abs_diff']:.3g}; sim {out['sim_abs_diff']:.3g}, smooth {out['smooth_abs_diff']:.3g}); "
          f"warped max |diff| {out['warped_max_abs_diff']:.3g}; registration field max |diff| "
          f"{out['registration_field_max_abs_diff']:.3g}")
    return o, terms


def write_fixtures(outdir: Path, net_out, step, terms) -> None:
    """Seeds, config and the official outputs; no weights (randomise rebuilds them)."""
    outdir.mkdir(parents=True, exist_ok=True)
    eps, field = net_out
    torch.save(dict(unet=dict(SMALL), shape=list(SMALL_SHAPE), seeds=dict(SEEDS), t=T, lam=LAM, gamma=GAMMA,
                    eps=eps.clone(), field=field.clone(), warped=step["warped"].clone(),
                    reg_field=step["reg_flow"].clone(),
                    terms=dict(loss=step["loss"], sim=step["sim"], smooth=step["smooth"])),
               outdir / "fsdiffreg_small.pt")
    print(f"fixtures written to {outdir}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", type=Path, required=True, help="checkout of xmed-lab/FSDiffReg")
    ap.add_argument("--extra-path", type=Path, default=None, help="folder with packages the official code needs")
    ap.add_argument("--write-fixtures", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--skip-full", action="store_true", help="skip the official-size comparison")
    args = ap.parse_args(argv)
    if not (args.official / "model/diffusion_3D/unet.py").exists():
        sys.exit(f"{args.official}: not an FSDiffReg checkout (model/diffusion_3D/unet.py missing)")
    torch.set_grad_enabled(False)
    report: dict = {}
    with cuda_on_cpu():
        mods = load_official(args.official, args.extra_path)
        if not args.skip_full:
            compare_net(mods, dict(OFFICIAL[3]), FULL_SHAPE, "network_official_size", report)
        off, ours, net_out = compare_net(mods, dict(SMALL), SMALL_SHAPE, "network_small", report)
        step, terms = compare_step(mods, dict(SMALL), SMALL_SHAPE, off, ours, report)
    worst = max(v for r in report.values() for k, v in r.items() if k.endswith("diff"))
    report["largest_difference"] = worst
    print(f"largest difference: {worst:.3g} ({'ok' if worst <= 1e-5 else 'ABOVE 1e-5'})")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.write_fixtures:
        write_fixtures(args.write_fixtures, net_out, step, terms)
    return 0 if worst <= 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())

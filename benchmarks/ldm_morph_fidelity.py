"""LDM-Morph's networks (diffreg.nets.ldm_morph, nets.vq_autoencoder, nets.adm) against the
official code on identical random weights.

    python benchmarks/ldm_morph_fidelity.py --official /path/to/LDM-Morph \
        [--extra-path /tmp/bench_deps] [--write-fixtures tests/fixtures/ldm_morph] [--json out.json]

Imports ``TransModels/`` and ``ldm/`` of wujiong-hub/LDM-Morph from its checkout (never part of
diffreg). ``timm`` (DropPath, trunc_normal_, to_2tuple), ``ml_collections`` (its config) and
``einops`` come from --extra-path when there, else stand-ins (DropPath is the identity in eval
mode, the initialisers are overwritten, einops is not called by these configurations). Prints:
  - the registration network ``LDMMorph(256, 384, 640, 896)``: names and shapes equal (in order),
    strict load, parameter count, the field on one 128^2 pair with the official feature shapes
    (1,256,32,32) .. (1,896,4,4), in float32 and float64;
  - the same network assembled at a small width from the official modules, run by the official
    forward (the fixture);
  - the VQ encoder + quant_conv (``ldm.modules.diffusionmodules.model.Encoder``, the autoencoder
    config of the repository) and the whole VQ model's names: strict load, the latent of a 128^2 image;
  - the LDM U-Net (``openaimodel.UNetModel``, the latent-diffusion config) in our ``nets.adm``:
    strict load, the 12 encoder-block outputs at t = 1.
With --write-fixtures it writes what tests/unit/test_ldm_morph.py checks.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import types
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from random_weights import seeded, unit_gain  # noqa: E402

from diffreg.features.latent_diffusion import OFFICIAL_UNET, encoder_block_outputs  # noqa: E402
from diffreg.nets.adm import ADMUNet  # noqa: E402
from diffreg.nets.ldm_morph import OFFICIAL, LDMMorphNet  # noqa: E402
from diffreg.nets.vq_autoencoder import OFFICIAL_VQ, VQAutoencoder, VQConfig  # noqa: E402

# small widths for the fixture: 64^2 maps of 16, 8, 4, 2 (window 7: padding, shifts, masks)
SMALL = dict(feature_channels=(6, 10, 12, 14), embed_dim=8, depths=(2, 2, 2, 2), num_heads=(2, 2, 2, 2),
             window_size=7, cross_depth=2, cross_heads=2, cross_window=7)
SMALL_SHAPE = (1, 1, 64, 64)
# the official GroupNorm has 32 groups: 32 channels at least
SMALL_VQ = VQConfig(ch=32, ch_mult=(1, 1, 2), num_res_blocks=1, attn_resolutions=(16,), resolution=64, n_embed=32)
SEEDS = (11, 1, 2, 3)                   # weights, moving, fixed, features



def _stub(name, **attrs):
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    sys.modules[name] = mod
    return mod


def load_official(root: Path, extra: list[Path]):
    for p in extra:
        sys.path.insert(0, str(p))
    try:
        from timm.models.layers import DropPath, to_2tuple, to_3tuple, trunc_normal_  # noqa: F401
    except Exception:              # stand-ins: identity DropPath in eval, init overwritten
        class DropPath(nn.Identity):
            def __init__(self, *a, **k):
                super().__init__()

        def tup(n):
            return lambda x: tuple(x) if isinstance(x, (tuple, list)) else (x,) * n
        for name in ("timm", "timm.models"):
            _stub(name)
        _stub("timm.models.layers", DropPath=DropPath, trunc_normal_=nn.init.trunc_normal_,
              to_2tuple=tup(2), to_3tuple=tup(3))
    try:
        import ml_collections  # noqa: F401
    except ImportError:
        _stub("ml_collections", ConfigDict=types.SimpleNamespace)
    try:
        import einops  # noqa: F401
    except ImportError:
        _stub("einops", rearrange=None, repeat=None)
    sys.path.insert(0, str(root))
    from TransModels import Conv2dReLU, Decoder, LDMMorph, LWCA, LWSA
    from utils import configs
    from ldm.modules.diffusionmodules import model as ldm_model
    from ldm.modules.diffusionmodules import openaimodel
    return types.SimpleNamespace(Conv2dReLU=Conv2dReLU, Decoder=Decoder, LDMMorph=LDMMorph, LWCA=LWCA, LWSA=LWSA,
                                 configs=configs, ldm_model=ldm_model, openaimodel=openaimodel)


def official_small(m, s):
    """The official LDMMorph with its forward, built at another width (its __init__ hardcodes 64)."""
    net = m.LDMMorph.LDMMorph.__new__(m.LDMMorph.LDMMorph)
    nn.Module.__init__(net)
    e = s["embed_dim"]
    c1 = m.configs.get_SelfAttention_config()
    c1.embed_dim, c1.depths, c1.num_heads, c1.window_size = e, s["depths"], s["num_heads"], s["window_size"]
    c2 = m.configs.get_CrossAttention_config()
    c2.depths = (s["cross_depth"],) + tuple(s["depths"][1:])
    c2.num_heads = (s["cross_heads"],) + tuple(s["num_heads"][1:])
    c2.window_size = (s["cross_window"],) * 2
    net.avg_pool = nn.AvgPool2d(3, stride=2, padding=1)
    net.ec1 = m.Conv2dReLU.Conv2dReLU(2, e // 2, 3, 1, use_batchnorm=False)
    net.start_channel = e
    net.lwsa = m.LWSA.LWSA(c1, in_channel=2)
    for k, cin in enumerate(s["feature_channels"]):
        setattr(net, f"c{k + 1}", net.encoder(cin, e * 2 ** k, bias=True))
    for k in range(4):
        setattr(net, f"lwca{k + 1}", m.LWCA.LWCA(c2, dim_diy=e * 2 ** k))
    for i, (cin, cout) in enumerate([(8 * e, 4 * e), (4 * e, 2 * e), (2 * e, e), (e, e // 2)]):
        setattr(net, f"up{i}", m.Decoder.DecoderBlock(cin, cout, skip_channels=cout, use_batchnorm=False))
    net.up = nn.Upsample(scale_factor=2, mode="bicubic", align_corners=False)
    net.reg_head = m.Decoder.RegistrationHead(in_channels=e // 2, out_channels=2, kernel_size=3)
    return net


def same_weights(ours: nn.Module, official: nn.Module, seed: int, scaled=("reg_head",), scale=0.1) -> None:
    unit_gain(ours, seed, scaled, scale)
    off = official.state_dict()
    for k, v in ours.state_dict().items():          # the buffers (relative position indices) agree
        if not v.is_floating_point():
            assert torch.equal(off[k], v), k
    official.load_state_dict(ours.state_dict(), strict=True)
    ours.eval(), official.eval()


def inputs(shape, channels, dtype=torch.float32):
    mov, fix = seeded(shape, SEEDS[1], dtype), seeded(shape, SEEDS[2], dtype)
    h, w = shape[2:]
    feats = [seeded((shape[0], c, h // 2 ** (k + 2), w // 2 ** (k + 2)), SEEDS[3] + k, dtype) * 2 - 1
             for k, c in enumerate(channels)]
    return mov, fix, feats


def field_diff(ours, official, shape, channels, report, key, dtype=torch.float32):
    ours.to(dtype), official.to(dtype)
    mov, fix, feats = inputs(shape, channels, dtype)
    with torch.no_grad():
        t = time.perf_counter()
        ref = official(mov, fix, *feats)
        t_off = time.perf_counter() - t
        t = time.perf_counter()
        out = ours(mov, fix, feats)
        t_ours = time.perf_counter() - t
    diff = (out - ref).abs().max().item()
    ours.float(), official.float()
    report[key] = dict(shape=list(shape), dtype=str(dtype), max_abs_diff=diff, max_abs_field=ref.abs().max().item(),
                       seconds_official=t_off, seconds_ours=t_ours)
    print(f"{key} {list(shape)} {str(dtype)[6:]}: largest |field difference| {diff:.3g} (largest |field| "
          f"{ref.abs().max().item():.3g}); forward {t_off:.2f} s official, {t_ours:.2f} s ours")
    return ref


def official_vq_encoder(m, c: VQConfig):
    enc = m.ldm_model.Encoder(ch=c.ch, out_ch=c.out_ch, ch_mult=c.ch_mult, num_res_blocks=c.num_res_blocks,
                              attn_resolutions=list(c.attn_resolutions), in_channels=c.in_channels,
                              resolution=c.resolution, z_channels=c.z_channels, double_z=False)
    dec = m.ldm_model.Decoder(ch=c.ch, out_ch=c.out_ch, ch_mult=c.ch_mult, num_res_blocks=c.num_res_blocks,
                              attn_resolutions=list(c.attn_resolutions), in_channels=c.in_channels,
                              resolution=c.resolution, z_channels=c.z_channels)
    return nn.ModuleDict({"encoder": enc, "quant_conv": nn.Conv2d(c.z_channels, c.embed_dim, 1),
                          "decoder": dec, "post_quant_conv": nn.Conv2d(c.embed_dim, c.z_channels, 1),
                          "quantize": nn.ModuleDict({"embedding": nn.Embedding(c.n_embed, c.embed_dim)})})


def vq_diff(m, c: VQConfig, shape, report, key):
    ours = VQAutoencoder(c).eval()
    off = official_vq_encoder(m, c).eval()
    names_equal = sorted((k, tuple(v.shape)) for k, v in ours.state_dict().items()) == \
        sorted((k, tuple(v.shape)) for k, v in off.state_dict().items())
    unit_gain(ours, SEEDS[0])
    off.load_state_dict(ours.state_dict(), strict=True)
    x = seeded(shape, SEEDS[1])
    with torch.no_grad():
        ref = off["quant_conv"](off["encoder"](x))
        out = ours.encode(x)
        dec_ref = off["decoder"](off["post_quant_conv"](ref))
        dec = ours.decode(out, quantize=False)
    d, dd = (out - ref).abs().max().item(), (dec - dec_ref).abs().max().item()
    report[key] = dict(names_shapes_equal=names_equal, parameters=sum(p.numel() for p in ours.parameters()),
                       latent_shape=list(out.shape), max_abs_diff_latent=d, max_abs_latent=ref.abs().max().item(),
                       max_abs_diff_decoded=dd)
    print(f"{key}: names and shapes equal {names_equal}; latent {list(out.shape)} largest |difference| {d:.3g} "
          f"(largest |latent| {ref.abs().max().item():.3g}); decoder {dd:.3g}")
    return ours, x, ref


def unet_diff(m, report, key):
    c = OFFICIAL_UNET
    off = m.openaimodel.UNetModel(image_size=32, in_channels=1, out_channels=1, model_channels=64,
                                  attention_resolutions=[8, 4, 2], num_res_blocks=2, channel_mult=[1, 2, 3, 4],
                                  num_head_channels=32).eval()
    ours = ADMUNet(c).eval()
    names_equal = [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in off.state_dict().items()]
    unit_gain(ours, SEEDS[0])
    off.load_state_dict(ours.state_dict(), strict=True)
    z = seeded((1, 1, 32, 32), SEEDS[1]) * 2 - 1
    t = torch.tensor([1])
    with torch.no_grad():
        eps_ref, (enc_ref, _) = off(z, t)
        blocks = encoder_block_outputs(ours, z, t)
        eps = ours(z, t)
    diffs = [(a - b).abs().max().item() for a, b in zip(blocks, enc_ref)]
    report[key] = dict(names_shapes_equal=names_equal, parameters=sum(p.numel() for p in ours.parameters()),
                       blocks=len(enc_ref), max_abs_diff_blocks=max(diffs),
                       max_abs_diff_eps=(eps - eps_ref).abs().max().item())
    print(f"{key}: names and shapes equal {names_equal}, {report[key]['parameters']:,} parameters; "
          f"{len(enc_ref)} encoder blocks, largest |difference| {max(diffs):.3g}; eps {report[key]['max_abs_diff_eps']:.3g}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", required=True, type=Path, help="checkout of github.com/wujiong-hub/LDM-Morph")
    ap.add_argument("--extra-path", type=Path, action="append", default=[], help="folder with timm, ml_collections")
    ap.add_argument("--write-fixtures", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    m = load_official(args.official, args.extra_path)
    report = {}

    full_off = m.LDMMorph.LDMMorph(256, 384, 640, 896)           # the official __init__
    assembled = [(k, tuple(v.shape)) for k, v in official_small(m, OFFICIAL).state_dict().items()]
    ours = LDMMorphNet()
    names_off = [(k, tuple(v.shape)) for k, v in full_off.state_dict().items()]
    names_ours = [(k, tuple(v.shape)) for k, v in ours.state_dict().items()]
    assert assembled == names_off, "the small-width assembly must mirror the official __init__"
    n_params = sum(p.numel() for p in ours.parameters())
    report["full"] = dict(names_shapes_equal=names_off == names_ours, parameters=n_params, keys=len(names_ours),
                          official_parameters=sum(p.numel() for p in full_off.parameters()))
    print(f"LDMMorph(256,384,640,896): {n_params:,} parameters (official {report['full']['official_parameters']:,}), "
          f"{len(names_ours)} keys; names and shapes equal (in order): {names_off == names_ours}")
    same_weights(ours, full_off, SEEDS[0])
    field_diff(ours, full_off, (1, 1, 128, 128), OFFICIAL["feature_channels"], report, "full_128")
    field_diff(ours, full_off, (1, 1, 128, 128), OFFICIAL["feature_channels"], report, "full_128_float64",
               torch.float64)

    small_off = official_small(m, SMALL)
    small = LDMMorphNet(**SMALL)
    same_weights(small, small_off, SEEDS[0])
    ref = field_diff(small, small_off, SMALL_SHAPE, SMALL["feature_channels"], report, "small")

    vq_diff(m, OFFICIAL_VQ, (1, 1, 128, 128), report, "vq_official")
    vq_small, vq_x, vq_ref = vq_diff(m, SMALL_VQ, (1, 1, 64, 64), report, "vq_small")
    unet_diff(m, report, "ldm_unet")

    if args.write_fixtures:
        args.write_fixtures.mkdir(parents=True, exist_ok=True)
        fx = dict(config={k: list(v) if isinstance(v, tuple) else v for k, v in SMALL.items()},
                  shape=list(SMALL_SHAPE), seeds=list(SEEDS[1:]),
                  state={k: v.clone() for k, v in small.state_dict().items()}, field=ref.clone(),
                  full_names=[[k, list(s)] for k, s in names_off], full_parameters=n_params,
                  vq_config=SMALL_VQ.to_dict(), vq_state={k: v.clone() for k, v in vq_small.state_dict().items()
                            if k.startswith(("encoder.", "quant_conv."))},
                  vq_latent=vq_ref.clone())
        torch.save(fx, args.write_fixtures / "ldm_morph_small.pt")
        print(f"fixture written to {args.write_fixtures / 'ldm_morph_small.pt'}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

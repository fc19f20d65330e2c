"""U-ViT and Swin-Unet: each network against a fixture from its official code
(`benchmarks/uvit_fidelity.py` / `benchmarks/swin_unet_fidelity.py --save-fixture ...`), our 3D
generalisation's shapes, the time input, and both as the backbone of the pairwise method."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from diffreg.methods import build_method, load_method
from diffreg.nets import build_backbone
from diffreg.nets.swin_unet import SwinUnet
from diffreg.nets.uvit import UViT, patchify, unpatchify

from .synthetic import assert_same_weights, fit_known_shift, seeded, smooth_shift_pairs

FIX = Path(__file__).resolve().parents[2] / "tests" / "fixtures"
CPU = torch.device("cpu")


def _uvit(cfg, **kw):
    cfg = {k: v for k, v in cfg.items() if k != "in_chans"}
    return UViT(2, in_channels=kw.get("c", 2), out_channels=kw.get("c", 2), head_std=None, **cfg)


def _swin(cfg, c_in, c_out):
    cfg = {k: v for k, v in cfg.items() if k not in ("in_chans", "num_classes", "drop_path_rate")}
    return SwinUnet(2, in_channels=c_in, out_channels=c_out, head_std=None, **cfg)


def test_uvit_equals_the_official_code():
    fx = torch.load(FIX / "uvit" / "uvit_small.pt", weights_only=True)
    net = _uvit(fx["config"], c=fx["config"]["in_chans"]).eval()
    net.load_state_dict(fx["state"], strict=True)
    with torch.no_grad():
        out = net(fx["x"], fx["t"])
    assert (out - fx["output"]).abs().max().item() <= 1e-5
    with torch.device("meta"):                           # the paper's CIFAR-10 U-ViT-S/2
        full = _uvit(fx["full_config"], c=fx["full_config"]["in_chans"])
    assert [[k, list(v.shape)] for k, v in full.state_dict().items()] == fx["full_names"]
    assert sum(p.numel() for p in full.parameters()) == fx["full_parameters"] == 44_255_328


def test_swin_unet_equals_the_official_code():
    fx = torch.load(FIX / "swin_unet" / "swin_unet_small.pt", weights_only=True)
    cfg = fx["config"]
    net = _swin(cfg, cfg["in_chans"], cfg["num_classes"]).eval()
    net.load_state_dict(fx["state"], strict=True)
    with torch.no_grad():
        out = net(fx["x"])
    assert (out - fx["output"]).abs().max().item() <= 1e-5
    full_cfg = fx["full_config"]                         # the official Synapse config
    full = _swin(full_cfg, full_cfg["in_chans"], full_cfg["num_classes"])
    assert [[k, list(v.shape)] for k, v in full.state_dict().items()] == fx["full_names"]
    assert sum(p.numel() for p in full.parameters()) == fx["full_parameters"] == 27_168_900


@pytest.mark.parametrize("name", ["uvit", "swin_unet"])
@pytest.mark.parametrize("ndim,shape", [(2, (2, 2, 48, 40)), (3, (1, 2, 16, 20, 12))])
def test_backbones_map_pairs_to_fields_of_the_right_shape(name, ndim, shape):
    torch.manual_seed(0)
    net = build_backbone(name, ndim)
    u = net(seeded(shape, 1))                 # sizes not multiples of patches / windows: padded, cropped
    assert u.shape == (shape[0], ndim, *shape[2:]) and torch.isfinite(u).all()
    assert 0 < u.abs().max() < 1e-2           # near-identity start (N(0, 1e-5) last layer)


def test_patches_and_3d_expansion_are_inverse_reshapes():
    x = seeded((2, 3, 8, 12, 4), 2)
    assert torch.equal(unpatchify(patchify(x, 4), (2, 3, 1), 4), x)
    net = build_backbone("swin_unet", 3, head_std=0.1).eval()
    assert net(seeded((1, 2, 16, 16, 16), 3)).abs().max() > 1e-3


def test_time_inputs():
    torch.manual_seed(0)
    x = seeded((2, 2, 32, 32), 4)
    uvit = build_backbone("uvit", 2, head_std=0.1, mlp_time_embed=True).eval()
    with torch.no_grad():
        assert torch.equal(uvit(x), uvit(x, torch.zeros(2)))          # t = None is t = 0
        assert (uvit(x, torch.tensor([10.0, 500.0])) - uvit(x)).abs().max() > 1e-4
    swin = build_backbone("swin_unet", 2, head_std=0.1, time_embed=True).eval()
    with torch.no_grad():
        torch.nn.init.normal_(swin.time_embed[-1].weight, 0, 0.1)     # starts at zero: no effect
        assert (swin(x, torch.tensor([10.0, 500.0])) - swin(x)).abs().max() > 1e-4
    with pytest.raises(ValueError, match="time_embed"):
        build_backbone("swin_unet", 2)(x, torch.zeros(2))


def test_full_sizes():
    with torch.device("meta"):
        counts = {(n, d): sum(p.numel() for p in build_backbone(n, d, size="full").parameters())
                  for n in ("uvit", "swin_unet") for d in (2, 3)}
    assert counts[("uvit", 2)] == 44_668_998 and counts[("swin_unet", 2)] == 27_166_692
    assert counts[("uvit", 3)] == 47_521_526 and counts[("swin_unet", 3)] == 30_743_292


def _method(name, iterations):
    cfg = {"backbone": name, "backbone_kwargs": {}, "similarity": "mse", "lambda_reg": 0.01,
           "iterations": iterations, "lr": 2e-3, "batch_size": 2, "log_every": 1000, "inter_subject": False}
    torch.manual_seed(0)
    return build_method("voxelmorph", 2, cfg, CPU)


@pytest.mark.parametrize("name", ["uvit", "swin_unet"])
def test_trains_one_step_and_saves_and_loads(name, tmp_path):
    m = _method(name, 1)
    summary = m.fit(smooth_shift_pairs(n=2, size=32))
    assert summary["iterations"] == 1 and np.isfinite(summary["loss_last_10pct"])
    m.save(tmp_path)
    back = load_method(tmp_path, CPU)
    assert back.cfg.backbone == name
    assert_same_weights(m, back)
    a, b = seeded((1, 1, 32, 32), 1), seeded((1, 1, 32, 32), 2)
    assert torch.equal(back.register(a, b).displacement, m.register(a, b).displacement)


@pytest.mark.parametrize("name", ["uvit", "swin_unet"])
def test_registers_a_shift_better_than_identity(name):
    """Smooth random 2D images shifted by 2 voxels along axis 0: after a short fit the warped
    image is closer to the fixed one and the field points back along axis 0."""
    m = _method(name, 60)
    summary, before, after, shift = fit_known_shift(m, smooth_shift_pairs(size=32), 6)
    assert summary["loss_last_10pct"] < summary["loss_first_10pct"]
    assert after < 0.3 * before
    assert -2.6 < shift < -1.4     # b(x) = a(x - 2): u ~ -2 on axis 0

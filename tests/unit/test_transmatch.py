"""TransMatch: the network against a fixture from the official code
(`benchmarks/transmatch_fidelity.py --write-fixtures tests/fixtures/transmatch`), and as the
backbone of the pairwise (VoxelMorph-style) method."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from diffreg.methods import build_method, load_method
from diffreg.nets import build_backbone
from diffreg.nets.transmatch import PAIRWISE_SETTINGS, TransMatch

from .synthetic import fit_known_shift, seeded, smooth_shift_pairs

FIX = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "transmatch"
CPU = torch.device("cpu")
SMALL = {"embed_dim": 8, "num_heads": [2, 2, 2, 2], "depths": [1, 1, 1, 1], "reg_head_chan": 4}


@pytest.fixture(scope="module")
def fixture():
    return torch.load(FIX / "transmatch_small.pt", weights_only=True)


def test_transmatch_equals_the_official_code(fixture):
    """Official options (fixed image through moving_lwsa, the official 3D window_reverse), random
    weights loaded strictly; the field at every other voxel of a 128x32x64 pair."""
    net = TransMatch(3, **fixture["config"]).eval()
    net.load_state_dict(fixture["state"], strict=True)
    shape = tuple(fixture["shape"])
    mov, fix = (seeded(shape, s) for s in fixture["seeds"])
    with torch.no_grad():
        field = net(torch.cat([mov, fix], 1))
    assert (field[..., ::2, ::2, ::2] - fixture["field"]).abs().max().item() < 1e-5


def test_transmatch_full_network_has_the_official_names_and_shapes(fixture):
    with torch.device("meta"):
        net = TransMatch(3)
    assert [[k, list(v.shape)] for k, v in net.state_dict().items()] == fixture["full_names"]
    assert sum(p.numel() for p in net.parameters()) == fixture["full_parameters"] == 112_350_291


def test_paper_options_reduce_to_the_official_ones_where_they_coincide():
    """Separate streams with equal weights = one shared stream; in 2D the official window reverse
    is Swin's (the partition's permutation is its own inverse there); in 3D it is not."""
    torch.manual_seed(0)
    x2 = seeded((1, 2, 64, 64), 3)
    a = TransMatch(2, **SMALL).eval()
    b = TransMatch(2, **SMALL, fixed_stream="moving_lwsa", window_merge="official").eval()
    b.load_state_dict(a.state_dict())
    a.fixed_lwsa.load_state_dict(a.moving_lwsa.state_dict())
    with torch.no_grad():
        for p in a.reg_head.parameters():                  # a visible field
            p.normal_(0, 0.1)
        b.load_state_dict(a.state_dict())
        assert torch.equal(a(x2), b(x2))
        c = TransMatch(3, **SMALL, window_size=4).eval()
        d = TransMatch(3, **SMALL, window_size=4, window_merge="official").eval()
        for p in c.reg_head.parameters():
            p.normal_(0, 0.1)
        d.load_state_dict(c.state_dict())
        x3 = seeded((1, 2, 32, 32, 32), 4)                  # 1/4 map 8^3: two windows per axis
        assert (c(x3) - d(x3)).abs().max() > 1e-4


@pytest.mark.parametrize("ndim,shape", [(2, (2, 2, 48, 40)), (3, (1, 2, 20, 16, 24))])
def test_transmatch_maps_pairs_to_fields_of_the_right_shape(ndim, shape):
    net = build_backbone("transmatch", ndim, **SMALL)
    assert net.reg_head[0].weight.abs().max() < 1e-3       # near-identity start (N(0, 1e-5) head)
    u = net(seeded(shape, 1))                               # sizes padded to 32 inside, cropped back
    assert u.shape == (shape[0], ndim, *shape[2:]) and torch.isfinite(u).all()


def test_transmatch_settings_and_defaults():
    assert TransMatch(3).moving_lwsa.transformer.layers[0].blocks[0].window == (5, 6, 5)   # official LPBA40
    assert TransMatch(2, **SMALL).moving_lwsa.transformer.layers[0].blocks[0].window == (4, 4)
    with pytest.raises(ValueError, match="fixed_stream"):
        TransMatch(2, fixed_stream="both")
    with pytest.raises(ValueError, match="window_merge"):
        TransMatch(2, window_merge="x")
    m = build_method("voxelmorph", 2, {**PAIRWISE_SETTINGS["ldm_morph"], "backbone_kwargs": SMALL}, CPU)
    assert (m.cfg.similarity, m.cfg.lambda_reg, m.cfg.lr) == ("mse", 4.0, 4e-4)


def _method(iterations, **over):
    cfg = {"backbone": "transmatch", "backbone_kwargs": SMALL, "similarity": "mse", "lambda_reg": 0.01,
           "iterations": iterations, "lr": 5e-3, "batch_size": 2, "log_every": 1000, "inter_subject": False,
           "pad_multiple": 32, **over}
    torch.manual_seed(0)
    return build_method("voxelmorph", 2, cfg, CPU)


def test_transmatch_trains_one_step_and_saves_and_loads(tmp_path):
    m = _method(1)
    summary = m.fit(smooth_shift_pairs(n=2, size=32))
    assert summary["iterations"] == 1 and np.isfinite(summary["loss_last_10pct"])
    a, b = seeded((1, 1, 32, 32), 1), seeded((1, 1, 32, 32), 2)
    m.save(tmp_path)
    back = load_method(tmp_path, CPU)
    assert back.cfg.backbone == "transmatch"
    assert torch.equal(back.register(a, b).displacement, m.register(a, b).displacement)


def test_transmatch_registers_a_shift_better_than_identity():
    """Smooth random 2D images shifted by 2 voxels along axis 0: after a short fit the field points
    about 2 voxels back and the warped image is closer to the fixed one."""
    data = smooth_shift_pairs(size=32)
    m = _method(25)
    summary, before, after, shift = fit_known_shift(m, data, 6)
    assert summary["loss_last_10pct"] < summary["loss_first_10pct"]
    assert after < 0.6 * before
    assert -2.6 < shift < -1.0     # b(x) = a(x - 2): u ~ -2 on axis 0

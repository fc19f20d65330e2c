"""M2M-Reg (methods/m2m_reg.py, methods/icon_maps.py): the composition order on known maps, the
mono-modal cycle, GradCyCon, the bridge sampling (unsupervised, semi-supervised, k = 0 / all), the
voxel -> [0, 1] conversion of voxel backbones, and a training step per backbone."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from diffreg import spatial
from diffreg.methods import TrainingSet, build_method, load_method
from diffreg.methods.icon_maps import (compose_maps, field_map, jacobian_identity_penalty, noisy_identity,
                                       unit_to_voxels, voxels_to_unit)
from diffreg.methods.m2m_reg import (M2MObjective, check_mono_modal, cycle_maps, cycle_paths, m2m_terms)
from diffreg.nets.tallunet import identity01, sample01

CPU = torch.device("cpu")
N = 32
TINY = {"gradicon": {"backbone": "gradicon", "levels": 0, "backbone_kwargs": {"down": [2, 4, 4], "up": [4, 4]}},
        "transmorph": {"backbone": "transmorph", "lambda_reg": 0.01, "lambda_gcc": 1.0,
                       "backbone_kwargs": {"embed_dim": 8, "depths": [1, 1], "heads": [1, 1], "window": 4}},
        "corrmlp": {"backbone": "corrmlp", "lambda_reg": 0.01, "lambda_gcc": 1.0,
                    "backbone_kwargs": {"enc_channels": 2, "dec_channels": 4}}}


# ----------------------------------------------------------------- known maps in [0, 1] coordinates
def affine(m, t):
    """x -> M (x - c) + c + t about the centre c = 0.5 (channels are the coordinate axes)."""
    m = torch.tensor(m, dtype=torch.float64)
    t = torch.tensor(t, dtype=torch.float64).view(1, 2, 1, 1)

    def f(x):
        y = torch.einsum("ij,bj...->bi...", m, x - 0.5) + 0.5
        return y + t
    return f, m, t


def affine_inverse(m, t):
    minv = torch.linalg.inv(m)
    return lambda y: torch.einsum("ij,bj...->bi...", minv, y - 0.5 - t) + 0.5


def shear_sin(a):
    """x0 -> x0 + a sin(2 pi x1): smooth, non-affine, its inverse subtracts the same."""
    def f(x):
        return torch.stack([x[:, 0] + a * torch.sin(2 * math.pi * x[:, 1]), x[:, 1]], 1)
    return f


def _interior(n=N):
    x = identity01((n, n), dtype=torch.float64)
    return x[:, :, n // 4: 3 * n // 4, n // 4: 3 * n // 4]


def _consistent_cycle():
    """Maps [phi_AB, phi_BAc, phi_AcBc, phi_BcA] whose composition in path order is the identity:
    phi_BcA = (phi_AB o phi_BAc o phi_AcBc)^-1, the maps not commuting."""
    f, mf, tf = affine([[1.05, 0.12], [-0.08, 0.96]], [0.02, -0.01])
    g = shear_sin(0.03)
    g_inv = shear_sin(-0.03)
    h, mh, th = affine([[0.97, -0.05], [0.1, 1.02]], [-0.015, 0.01])
    f_inv, h_inv = affine_inverse(mf, tf), affine_inverse(mh, th)
    last = lambda x: h_inv(g_inv(f_inv(x)))          # noqa: E731
    return [f, g, h, last]


def test_composition_icon_order_gives_the_identity_on_a_consistent_cycle():
    x = _interior()
    maps = _consistent_cycle()
    ours = compose_maps(maps, "icon")(x)
    err_vox = ((ours - x).abs() * (N - 1)).max()
    assert err_vox < 1e-4
    # the official order applies the first map innermost: another map for non-commuting maps
    theirs = compose_maps(maps, "reversed")(x)
    assert ((theirs - x).abs() * (N - 1)).max() > 0.1
    # two maps: phi with its inverse is the identity either way (the test above needs four)
    f, mf, tf = affine([[1.05, 0.12], [-0.08, 0.96]], [0.02, -0.01])
    for order in ("icon", "reversed"):
        assert (compose_maps([f, affine_inverse(mf, tf)], order)(x) - x).abs().max() < 1e-12


def test_composition_of_sampled_affine_fields_matches_the_warps():
    """Maps given as displacement grids (field_map, bilinear: exact for affine fields): the path's map
    warps as the two warps in turn, A o phi_AB o phi_BC, and the cycle of a map with its inverse is the
    identity at interior points to 1e-4 voxel; the reversed order is not."""
    ident = identity01((N, N), dtype=torch.float64)
    f, mf, tf = affine([[1.1, 0.25], [0.0, 0.95]], [0.01, 0.0])
    h, mh, th = affine([[0.95, 0.0], [0.25, 1.08]], [-0.01, 0.02])
    grid = lambda fn: field_map(fn(ident) - ident)      # noqa: E731
    phi_ab, phi_bc = grid(f), grid(h)
    inverse = grid(lambda x: affine_inverse(mh, th)(affine_inverse(mf, tf)(x)))
    x = _interior()
    assert (compose_maps([phi_ab, phi_bc, inverse])(x) - x).abs().max() * (N - 1) < 1e-4
    assert (compose_maps([phi_ab, phi_bc, inverse], "reversed")(x) - x).abs().max() * (N - 1) > 0.1
    img = 0.3 * ident[:, :1] + 0.7 * ident[:, 1:] ** 1     # linear: bilinear sampling is exact
    in_turn = sample01(sample01(img, phi_ab(ident)), phi_bc(ident))
    inner = (slice(None), slice(None), slice(8, 24), slice(8, 24))
    assert (sample01(img, compose_maps([phi_ab, phi_bc])(ident)) - in_turn)[inner].abs().max() < 1e-10
    assert (sample01(img, compose_maps([phi_ab, phi_bc], "reversed")(ident)) - in_turn)[inner].abs().max() > 1e-3


def test_gradcycon_is_zero_on_a_consistent_cycle_and_positive_otherwise():
    torch.manual_seed(0)
    eps = noisy_identity((N, N), CPU, torch.float64)[:, :, 4:12, 4:12]     # inside the domain
    maps = _consistent_cycle()
    assert jacobian_identity_penalty(compose_maps(maps), eps) < 1e-12
    broken = maps[:3] + [lambda x: maps[3](x) * 1.0 + 0.05 * torch.sin(6 * x)]
    assert jacobian_identity_penalty(compose_maps(broken), eps) > 1e-3
    # a pure translation error keeps the Jacobian: GradCyCon is a Jacobian penalty, not a distance
    shifted = [lambda x: maps[0](x) + 0.01] + maps[1:]     # the outermost map shifted
    assert jacobian_identity_penalty(compose_maps(shifted), eps) < 1e-12


def test_voxel_displacements_are_converted_to_unit_coordinates():
    disp = torch.zeros(1, 2, N, 24, dtype=torch.float64)
    disp[:, 0], disp[:, 1] = 2.0, -1.5
    d01 = voxels_to_unit(disp)
    assert torch.allclose(d01[:, 0], torch.full_like(d01[:, 0], 2.0 / (N - 1)))
    assert torch.allclose(d01[:, 1], torch.full_like(d01[:, 1], -1.5 / 23))
    assert torch.equal(unit_to_voxels(d01), disp)
    # the CorrMLP backbone's voxel output: warping through the [0, 1] map equals the voxel warp
    m = build_method("m2m_reg", 2, TINY["corrmlp"], CPU)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in m.nets["net"].parameters():
            p.add_(torch.randn_like(p) * 0.3)
    x, y = torch.rand(1, 1, N, N), torch.rand(1, 1, N, N)
    phi, vox = m.mapper(m.nets["net"])(x, y)
    assert vox.abs().max() > 0.5                       # a non-trivial field, in voxels
    ident = identity01((N, N))
    assert torch.allclose(sample01(x, phi(ident)), spatial.warp(x, vox), atol=1e-5)
    assert torch.allclose(m.register(x, y).displacement, vox, atol=1e-6)


# ----------------------------------------------------------------- the cycle is mono-modal
def _identity_mapper(calls):
    def mapper(x, y):
        calls.append((x, y))
        return (lambda p: p + 0 * x.sum()), None
    return mapper


def _same_subject_batch(b=2):
    g = torch.Generator().manual_seed(0)
    img = F.avg_pool2d(torch.rand(1, 1, N, N, generator=g), 5, 1, 2).expand(b, 1, N, N)
    return {"A": img, "Ac": img.clone(), "B": 1 - img, "Bc": 1 - img.clone()}


@pytest.mark.parametrize("semi", [False, True])
def test_the_cycle_compares_images_of_one_modality(semi):
    """Modality 2 = 1 - modality 1 (LNCC -1 across modalities); with identity maps every L_m2m term
    compares an image with itself (loss ~0); cross-modal terms add ~0.6 each at 32^2 (zero-padded windows)."""
    cfg = build_method("m2m_reg", 2, TINY["gradicon"], CPU).cfg
    from diffreg.methods.gradicon import icon_lncc
    lncc = icon_lncc(5.0)
    batch = _same_subject_batch()
    calls = []
    terms = m2m_terms(_identity_mapper(calls), batch, lncc, cfg, semi)
    assert terms["m2m"] < 0.05
    assert len(calls) == (4 if semi else 5)          # AB, BA, BcA, BAc (+ AcBc)
    swapped = {**batch, "Ac": batch["Bc"], "Bc": batch["Ac"]}   # a bridge with its modalities swapped
    assert m2m_terms(_identity_mapper([]), swapped, lncc, cfg, semi)["m2m"] > 1.5
    check_mono_modal(cycle_paths(semi))
    with pytest.raises(ValueError, match="compares modality"):
        check_mono_modal([("A", ["AB"], "B")])
    assert cycle_maps(semi) == ["AB", "BAc"] + ([] if semi else ["AcBc"]) + ["BcA"]


# ----------------------------------------------------------------- bridge sampling
def _data(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    imgs = list(F.avg_pool2d(torch.rand(n, 1, N, N, generator=g), 5, 1, 2)[:, 0].numpy())
    # each subject's images carry its index, modality 2 negated: the sampled ids can be read back
    mov = [x * 0 + i for i, x in enumerate(imgs)]
    fix = [x * 0 - i - 1 for i, x in enumerate(imgs)]
    return TrainingSet([f"s{i}" for i in range(n)], mov, fix)


def _ids(batch, key):
    v = batch[key][:, 0, 0, 0].numpy()
    return [int(round(x)) if x >= 0 else int(round(-x - 1)) for x in v], [bool(x < 0) for x in v]


def test_unsupervised_bridges_are_four_subjects_of_the_right_modalities():
    m = build_method("m2m_reg", 2, {**TINY["gradicon"], "swap_modalities": False}, CPU)
    obj = m.objective(_data())
    assert not obj.semi and obj.bridges == []
    batch = obj.sample(_data(), np.random.default_rng(0), 16)
    ids = {k: _ids(batch, k) for k in ("A", "B", "Ac", "Bc")}
    for s in range(16):
        assert len({ids[k][0][s] for k in ids}) == 4
    assert not any(ids["A"][1]) and all(ids["B"][1]) and not any(ids["Ac"][1]) and all(ids["Bc"][1])
    swapping = build_method("m2m_reg", 2, TINY["gradicon"], CPU).objective(_data())
    batch = swapping.sample(_data(), np.random.default_rng(0), 32)
    flags = _ids(batch, "A")[1]
    assert any(flags) and not all(flags)                              # both directions trained
    assert _ids(batch, "A")[1] == _ids(batch, "Ac")[1] != _ids(batch, "B")[1] == _ids(batch, "Bc")[1]


@pytest.mark.parametrize("setting,k", [({"prealigned_pairs": 2}, 2), ({"prealigned_fraction": 0.5}, 3),
                                       ({"prealigned_fraction": 1.0}, 6), ({"prealigned_pairs": 0}, 0)])
def test_semi_supervised_bridges(setting, k):
    data = _data()
    obj = build_method("m2m_reg", 2, {**TINY["gradicon"], **setting}, CPU).objective(data)
    assert obj.semi == (k > 0) and len(obj.bridges) == k
    if k == 0:                                        # k = 0: the unsupervised scheme
        return
    seen = set()
    for step in range(5):
        batch = obj.sample(data, np.random.default_rng(step), 8)
        a, b, ac, bc = (_ids(batch, key)[0] for key in ("A", "B", "Ac", "Bc"))
        for s in range(8):
            assert ac[s] == bc[s] and ac[s] in obj.bridges              # a pre-aligned pair
            assert a[s] != b[s] and ac[s] not in (a[s], b[s])
            seen.add(ac[s])
    if k == len(data.subjects):                       # k = all: every subject serves as a bridge
        assert seen == set(range(k))
    # the fixed subset is drawn once, from the seed
    again = build_method("m2m_reg", 2, {**TINY["gradicon"], **setting}, CPU).objective(data)
    assert again.bridges == obj.bridges


# ----------------------------------------------------------------- regulariser, training, registration
def test_map_gradient_includes_the_identity():
    m = build_method("m2m_reg", 2, TINY["corrmlp"], CPU)
    assert m.cfg.regulariser == "map_gradient" and build_method("m2m_reg", 2, TINY["gradicon"], CPU).cfg.regulariser == "gradicon"
    calls = []
    cfg = m.cfg
    from diffreg.losses import build_regulariser
    from diffreg.methods.gradicon import icon_lncc
    terms = m2m_terms(_identity_mapper(calls), _same_subject_batch(), icon_lncc(5.0), cfg, False,
                      build_regulariser("diffusion"))
    # identity map: channel d rises by 1 / (N - 1) per voxel along axis d, the other channel is flat
    assert float(terms["reg"]) == pytest.approx((1 / (N - 1)) ** 2 / 2, rel=1e-5)


@pytest.mark.parametrize("backbone", ["gradicon", "transmorph", "corrmlp"])
def test_training_step_and_registration(backbone, tmp_path):
    cfg = {**TINY[backbone], "iterations": 2, "batch_size": 2, "lr": 1e-3}
    m = build_method("m2m_reg", 2, cfg, CPU)
    before = {k: v.clone() for k, v in m.nets.state_dict().items()}
    stats = m.fit(_data(6, seed=3), tmp_path / "log.csv")
    assert np.isfinite(stats["loss_last_10pct"])
    assert any(not torch.equal(before[k], v) for k, v in m.nets.state_dict().items())
    log = (tmp_path / "log.csv").read_text().splitlines()
    assert log[0].startswith("iteration,loss,m2m,reg,gcc")
    x, y = torch.rand(1, 1, N, N), torch.rand(1, 1, N, N)
    disp = m.register(x, y).displacement
    assert disp.shape == (1, 2, N, N) and torch.isfinite(disp).all()
    m.save(tmp_path / "model")
    again = load_method(tmp_path / "model", CPU)
    assert torch.allclose(again.register(x, y).displacement, disp)


def test_gradicon_backbone_map_equals_the_gradicon_method_field():
    """The chain's map in voxels is the gradicon method's registration on the same weights."""
    m = build_method("m2m_reg", 2, TINY["gradicon"], CPU)
    g = build_method("gradicon", 2, {"levels": 0, "backbone_kwargs": {"down": [2, 4, 4], "up": [4, 4]}}, CPU)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in m.nets["net"].parameters():
            p.add_(torch.randn_like(p) * 0.2)
    g.nets.load_state_dict(m.nets.state_dict())
    x, y = torch.rand(1, 1, N, N), torch.rand(1, 1, N, N)
    a, b = m.register(x, y).displacement, g.register(x, y).displacement
    assert a.abs().max() > 0.1 and torch.allclose(a, b, atol=1e-5)


def test_settings_are_checked():
    from diffreg.errors import InputError
    with pytest.raises(InputError, match="composition"):
        build_method("m2m_reg", 2, {"composition": "backwards"}, CPU)
    with pytest.raises(InputError, match="not both"):
        build_method("m2m_reg", 2, {"prealigned_pairs": 2, "prealigned_fraction": 0.5}, CPU)
    with pytest.raises(InputError, match="4 distinct subjects"):
        build_method("m2m_reg", 2, TINY["gradicon"], CPU).objective(_data(3)).sample(_data(3), np.random.default_rng(0), 1)


# ----------------------------------------------------------------- Fig. 1a: curves logged during training
def _labelled_dir(tmp_path, n=4, with_labels=True):
    from diffreg.io import write_image
    g = torch.Generator().manual_seed(0)
    for i in range(n):
        img = F.avg_pool2d(torch.rand(1, 1, N, N, generator=g), 5, 1, 2)[0, 0].numpy()
        lab = (img > np.median(img)).astype(np.int16) + (img > np.percentile(img, 80)).astype(np.int16)
        write_image(tmp_path / f"s{i}_pet.nii.gz", img, np.eye(4))
        write_image(tmp_path / f"s{i}_t1.nii.gz", 1 - img, np.eye(4))
        if with_labels:
            write_image(tmp_path / f"s{i}_labels.nii.gz", lab, np.eye(4))
    return TrainingSet.from_dir(tmp_path, [f"s{i}" for i in range(n)], "pet", "t1")


def test_training_sets_carry_label_maps_where_every_subject_has_one(tmp_path):
    data = _labelled_dir(tmp_path / "a")
    assert data.moving_labels is not None and len(data.fixed_labels) == 4
    assert set(np.unique(data.moving_labels[0])) == {0, 1, 2}
    assert _labelled_dir(tmp_path / "b", with_labels=False).moving_labels is None
    objective = build_method("m2m_reg", 2, TINY["gradicon"], CPU).objective(data)
    assert "A_labels" not in objective.sample(data, np.random.default_rng(0), 3)     # training: images only
    objective.with_labels = True
    batch = objective.sample(data, np.random.default_rng(0), 3)
    assert batch["A_labels"].shape == (3, 1, N, N) and batch["A_labels"].dtype == torch.int64


def test_fig1_curves_stage_and_figure(tmp_path):
    import pandas as pd

    from diffreg.report.figures import get_figure
    from diffreg.stages import get_stage
    data = _labelled_dir(tmp_path / "data")
    out = tmp_path / "curves.csv"
    summary = get_stage("m2m_training_curves")(
        {"iterations": 3, "every": 2, "batch_size": 2, "levels": 0, "width": "small", "lr": 1e-3}, out, data, 0, "cpu", 1)
    assert summary["labels"] is True
    df = pd.read_csv(out)
    assert list(df["scheme"].unique()) == ["baseline", "m2m_reg"]
    assert df.groupby("scheme")["iteration"].apply(list).to_dict() == {"baseline": [1, 2, 3], "m2m_reg": [1, 2, 3]}
    assert np.isfinite(df[["loss", "lncc", "dice"]].to_numpy()).all() and (df["dice"] <= 1).all()
    files = get_figure("m2m_reg.training_curves")(tmp_path / "m.nii.gz", tmp_path / "f.nii.gz", {"curves": str(out)},
                                                  tmp_path / "fig", 0, "cpu")
    assert [f.name for f in files] == ["fig1a_curves.png", "fig1a_curves.csv"] and files[0].stat().st_size > 5_000


def test_pretrain_takes_the_stages_modalities_when_the_pipeline_passes_none(tmp_path):
    """stages.csv carries no modality: `diffreg pretrain --moving-modality null` reads the stage's own."""
    import json

    from diffreg.cli import main
    _labelled_dir(tmp_path / "data")
    cfg = tmp_path / "stage.json"
    cfg.write_text(json.dumps({"moving": "pet", "fixed": "t1", "iterations": 1, "every": 1, "batch_size": 1,
                               "levels": 0, "width": "small"}))
    args = ["pretrain", "--stage", "fig1", "--kind", "m2m_training_curves", "--config", str(cfg), "--data-dir",
            str(tmp_path / "data"), "--subjects", "s0,s1,s2,s3", "--moving-modality", "null", "--fixed-modality",
            "null", "--out", str(tmp_path / "curves.pt")]
    assert main(args) == 0 and (tmp_path / "curves.pt").read_text().startswith("scheme,iteration")
    cfg.write_text(json.dumps({"iterations": 1}))
    assert main(args) != 0                                     # neither given: one line, no training

"""DGIR: diffusion features, the feature-space losses, slices of volumes, the method, the
pretraining and figure commands, and the VGG/DINO loaders."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from diffreg.errors import InputError
from diffreg.features import (DINOFeatures, DiffusionFeatures, NeedsWeights, SliceSampler, VGGFeatures,
                              linear_alphas_cumprod)
from diffreg.features import correspondence as corr
from diffreg.features.natural import DEFAULT_IMAGES, NATURAL_GRAY, NATURAL_RGB, load_natural_images
from diffreg.features.similarity import diffusion_similarity
from diffreg.losses import SIMILARITIES, build_similarity
from diffreg.nets.adm import ADMUNet, small_config


@pytest.fixture(scope="module")
def adm():
    torch.manual_seed(0)
    return ADMUNet(small_config(8, num_groups=8))


@pytest.fixture(scope="module")
def adm_file(adm, tmp_path_factory):
    path = tmp_path_factory.mktemp("adm") / "adm.pt"
    torch.save({"config": adm.config.to_dict(), "state_dict": adm.state_dict()}, path)
    return path


def _smooth(shape, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 1, *shape, generator=g)
    k = torch.ones(1, 1, *[5] * len(shape)) / 5 ** len(shape)
    conv = F.conv2d if len(shape) == 2 else F.conv3d
    return conv(x, k, padding=2).clamp(0, 1)


# --- diffusion features -------------------------------------------------------------------
def test_linear_schedule_matches_ddpm_and_diffusers():
    from diffusers import DDPMScheduler
    abar = linear_alphas_cumprod()
    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")
    torch.testing.assert_close(abar, sched.alphas_cumprod, rtol=0, atol=0)
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    torch.testing.assert_close(abar.double(), torch.cumprod(1 - betas, 0), rtol=1e-5, atol=1e-7)


def test_forward_process_input_mapping(adm):
    f = DiffusionFeatures(adm, block=29, t=50)
    x = torch.rand(1, 1, 32, 32)
    noise = torch.randn(1, 3, 32, 32)
    abar = linear_alphas_cumprod()[50]
    expected = abar.sqrt() * (2 * x.expand(-1, 3, -1, -1) - 1) + (1 - abar).sqrt() * noise
    torch.testing.assert_close(f.q_sample(2 * x.expand(-1, 3, -1, -1) - 1, noise), expected)
    torch.testing.assert_close(f.extract(x, noise), adm.features(expected, 50, 29))


def test_pair_shares_noise_and_pads_odd_sizes(adm):
    f = DiffusionFeatures(adm, block=29, t=60, noise="shared")
    a = _smooth((36, 44), 1)                       # not a multiple of 32: padded inside
    fa, fb = f.pair(a, a.clone())
    assert fa.shape == (1, 16, 9, 11)
    torch.testing.assert_close(fa, fb, rtol=0, atol=0)   # identical images, identical features
    f.noise = "independent"                              # the official code's behaviour
    fa, fb = f.pair(a, a.clone())
    assert (fa - fb).abs().max() > 1e-3


# --- the loss -------------------------------------------------------------------------------
def test_diffusion_loss_is_registered_and_zero_gradient_wrt_feature_model(adm):
    assert {"diffusion", "vgg", "dino", "autoencoder"} <= set(SIMILARITIES.names())
    loss_fn = build_similarity("diffusion", model=adm, block=29, t=50, sigma=1.0)
    warped = _smooth((32, 32), 2).requires_grad_(True)
    fixed = _smooth((32, 32), 3)
    loss = loss_fn(warped, fixed)
    loss.backward()
    assert all(not p.requires_grad for p in adm.parameters())
    assert all(p.grad is None for p in adm.parameters())        # nothing accumulates in the model
    assert warped.grad is not None and warped.grad.abs().sum() > 0
    assert 0 < loss.item() < 2
    # 1 - LNCC of identical feature maps (shared noise) is 0 up to the epsilon: the official
    # relu(var) + 1e-6 gives 1 - var / (var + 1e-6) per location
    assert loss_fn(fixed, fixed.clone()).item() == pytest.approx(0.0, abs=1e-4)


def test_diffusion_loss_matches_lncc_of_features_computed_by_hand(adm):
    loss_fn = diffusion_similarity(model=adm, block=11, t=30, sigma=1.0)
    a, b = _smooth((32, 32), 4), _smooth((32, 32), 5)
    torch.manual_seed(7)
    loss = loss_fn(a, b)
    torch.manual_seed(7)
    fa, fb = DiffusionFeatures(adm, block=11, t=30).pair(a, b)
    lncc = build_similarity("lncc", window="gaussian", sigma=1.0, size=5, border="zeros",
                            eps=1e-6, eps_form="relu")     # the official epsilon on features
    assert loss.item() == pytest.approx(1 - lncc.similarity(fa, fb).item(), abs=1e-6)


def test_lncc_window_is_the_official_one():
    from diffreg.features.similarity import lncc_window
    # official: Gaussian sigma, kernel 4 sigma + 1 (sigma 4 in 2D, 5 in 3D); odd for scaled sigmas
    assert [lncc_window(s)["size"] for s in (4, 5, 1, 0.75, 0.5)] == [17, 21, 5, 5, 3]
    assert lncc_window(4)["border"] == "zeros" and lncc_window(4)["window"] == "gaussian"


def test_3d_loss_uses_shared_slices(adm):
    loss_fn = diffusion_similarity(model=adm, block=11, t=50, sigma=1.0, slices=3)
    vol = _smooth((20, 24, 28), 6)
    warped = vol.clone().requires_grad_(True)
    assert loss_fn(warped, vol).item() == pytest.approx(0.0, abs=1e-5)   # same slices of both
    loss = loss_fn(warped, _smooth((20, 24, 28), 7))
    loss.backward()
    assert loss.item() > 1e-3 and warped.grad.abs().sum() > 0
    assert all(p.grad is None for p in adm.parameters())


# --- slices of volumes ------------------------------------------------------------------------
def test_slice_sampler_covers_every_axis_and_takes_the_same_slices():
    sampler = SliceSampler(n=4)
    g = torch.Generator().manual_seed(0)
    shape = (5, 6, 7)
    axes, covered = set(), {0: set(), 1: set(), 2: set()}
    for _ in range(200):
        axis, idx = sampler.draw(shape, g)
        assert len(idx) == 4 and len(set(idx.tolist())) == 4
        assert all(0 <= i < shape[axis] for i in idx.tolist())
        axes.add(axis)
        covered[axis].update(idx.tolist())
    assert axes == {0, 1, 2}
    assert all(covered[a] == set(range(shape[a])) for a in range(3))   # the whole volume over time
    vol = torch.arange(2 * 5 * 6 * 7, dtype=torch.float32).reshape(2, 1, 5, 6, 7)
    a, b = sampler(vol, 10 * vol, torch.Generator().manual_seed(3))
    torch.testing.assert_close(b, 10 * a)                          # identical slice positions
    for axis in range(3):
        idx = torch.tensor([4, 0])
        s = SliceSampler.take(vol, axis, idx)
        assert s.shape == (4, 1, *[n for d, n in enumerate(shape) if d != axis])
        torch.testing.assert_close(s[1, 0], vol[0, 0].select(axis, 0))   # volume 0, second slice
        torch.testing.assert_close(s[2, 0], vol[1, 0].select(axis, 4))   # volume 1, first slice


# --- correspondences (Fig. 1, Fig. 2) --------------------------------------------------------------
def test_window_ncc_and_cosine_find_the_shift():
    a = _smooth((40, 40), 8)[0, 0]
    b = torch.roll(a, (3, -2), dims=(0, 1))
    p = (20, 18)
    assert corr.best_match(corr.window_ncc_map(a, b, p, sigma=2.0)) == (23, 16)
    assert corr.window_ncc_map(a, a, p, sigma=2.0)[p].item() == pytest.approx(1.0, abs=1e-4)
    feats = torch.stack([a, a ** 2, torch.sin(6 * a)])
    assert corr.best_match(corr.cosine_map(feats, torch.roll(feats, (3, -2), dims=(1, 2)), p)) == (23, 16)
    assert corr.best_match(corr.intensity_map(a, b, p)) is not None


# --- the method --------------------------------------------------------------------------------
def _training_set(shape, n=3):
    from diffreg.methods.base import TrainingSet
    imgs = [_smooth(shape, 20 + i)[0, 0].numpy() for i in range(n)]
    return TrainingSet([f"s{i}" for i in range(n)], imgs, [np.clip(1 - x, 0, 1) for x in imgs])


def test_dgir_method_paper_defaults_and_short_fit(adm_file, capsys):
    from diffreg.methods import build_method
    import diffreg.methods.dgir  # noqa: F401  (registers "dgir")
    m2 = build_method("dgir", 2, {"feature_checkpoint": str(adm_file)}, torch.device("cpu"))
    c = m2.config
    assert (c["block"], c["t"], c["lam"], c["lr"], c["batch_size"]) == (29, 50, 1.0, 1e-4, 4)
    assert (c["network"], c["backbone"], c["reg_scale"], c["regulariser"]) == \
        ("official", "dgir_official", "official", "diffusion_icon")
    assert sum(p.numel() for p in m2.nets["net"].parameters()) == 19_027_608    # the official tallUNet2 chain
    from diffreg.methods.pairwise import PairwiseConfig
    assert PairwiseConfig.settings(2) - {"similarity", "similarity_kwargs", "trajectory", "etas", "width"} <= set(c)   # the loop's settings too
    assert c["lambda_reg"] == 1.0                 # the official regulariser scale takes lambda as is
    small = {"feature_checkpoint": str(adm_file), "network": "small"}
    m3 = build_method("dgir", 3, small, torch.device("cpu"))
    assert (m3.config["block"], m3.config["official_sigma"], m3.config["lam"], m3.config["lambda_reg"]) == \
        (11, 5.0, 1.0, 1.0)
    assert m3.config["backbone"] == "icon" and list(m3.config["backbone_kwargs"]["scales"]) == [8, 4, 2, 1]
    # named values: the official configs' lambda (0.5 in 3D) and t (60 in 2D); voxel scale = lambda x D
    m3 = build_method("dgir", 3, {**small, "lam": "official", "reg_scale": "voxel"}, torch.device("cpu"))
    assert (m3.config["lam"], m3.config["lambda_reg"], m3.config["regulariser"]) == (0.5, 1.5, "diffusion")
    assert build_method("dgir", 2, {**small, "t": "official"}, torch.device("cpu")).config["t"] == 60
    with pytest.raises(InputError, match="t = 'paperish'"):
        build_method("dgir", 2, {**small, "t": "paperish"}, torch.device("cpu"))
    with pytest.raises(InputError, match="network = 'huge'"):
        build_method("dgir", 2, {**small, "network": "huge"}, torch.device("cpu"))
    assert build_method("dgir", 2, {**small, "sigma": "official"}, torch.device("cpu")).config["sigma"] == 4.0
    assert m3.scaled_sigma((160, 192, 224)) == 5.0 and m3.scaled_sigma((48, 48, 48)) == 1.25
    assert m2.scaled_sigma((256, 256)) == 4.0 and m2.scaled_sigma((64, 64)) == 1.0
    # a short fit on a lighter network (two steps) keeps the test fast
    m2 = build_method("dgir", 2, {**small, "iterations": 2, "log_every": 1,
                                  "batch_size": 1, "backbone_kwargs": {"scales": [2, 1]}}, torch.device("cpu"))
    summary = m2.fit(_training_set((32, 32)))
    assert summary["iterations"] == 2 and summary["block"] == 29 and summary["sigma"] == 0.5
    assert "iter 2/2" in capsys.readouterr().out
    disp = m2.register(torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32)).displacement
    assert disp.shape == (1, 2, 32, 32)


def test_dgir_autoencoder_rows_and_missing_weights():
    from diffreg.methods.dgir import DGIR
    data = _training_set((32, 32))
    for loss in ("ae_lncc", "deepsim"):
        m = DGIR(2, {"loss": loss, "iterations": 1, "ae_iterations": 2, "batch_size": 1, "network": "small",
                     "backbone_kwargs": {"scales": [1]}}, torch.device("cpu"))
        assert m.fit(data)["loss"] == loss
    for loss in ("vgg_lncc", "dino_lncc"):
        with pytest.raises(NeedsWeights, match="needs weights"):
            DGIR(2, {"loss": loss, "iterations": 1}, torch.device("cpu")).fit(data)
    # DGIR picks its similarity with `loss`; `similarity` is no DGIR setting
    with pytest.raises(InputError, match="unknown setting.*similarity for method dgir"):
        DGIR(2, {"similarity": "mind"}, torch.device("cpu"))
    with pytest.raises(InputError, match="feature_checkpoint"):
        DGIR(2, {"loss": "diffusion"}, torch.device("cpu")).fit(data)
    with pytest.raises(InputError, match="unknown DGIR loss"):
        DGIR(2, {"loss": "nope"}, torch.device("cpu"))


# --- VGG and DINO from files --------------------------------------------------------------------
def test_vgg16_loader_reads_torchvision_layout(tmp_path):
    g = torch.Generator().manual_seed(0)
    widths = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    conv_idx = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    state, cin = {}, 3
    for i, w in zip(conv_idx, widths):
        state[f"features.{i}.weight"] = torch.randn(w, cin, 3, 3, generator=g) * (2 / (9 * cin)) ** 0.5
        state[f"features.{i}.bias"] = torch.zeros(w)
        cin = w
    state["classifier.0.weight"] = torch.zeros(4, 4)
    torch.save(state, tmp_path / "vgg16.pth")
    vgg = VGGFeatures(tmp_path / "vgg16.pth", "relu2_2")
    x = torch.rand(1, 1, 20, 24)
    out = vgg(x)
    assert out.shape == (1, 128, 10, 12) and vgg.stride == 2
    # by hand: normalise, conv-relu x2, pool, conv-relu x2
    from diffreg.features.base import imagenet_normalise
    h = imagenet_normalise(x)
    for j, i in enumerate(conv_idx[:4]):
        if j == 2:
            h = F.max_pool2d(h, 2)
        h = F.relu(F.conv2d(h, state[f"features.{i}.weight"], state[f"features.{i}.bias"], padding=1))
    torch.testing.assert_close(out, h)
    with pytest.raises(NeedsWeights):
        VGGFeatures(None)


def test_dino_loader_reads_vit_layout(tmp_path):
    dim, depth, patch, grid = 64, 2, 8, 4
    state = {"cls_token": torch.zeros(1, 1, dim), "pos_embed": torch.randn(1, 1 + grid * grid, dim) * 0.02,
             "patch_embed.proj.weight": torch.randn(dim, 3, patch, patch) * 0.02,
             "patch_embed.proj.bias": torch.zeros(dim), "norm.weight": torch.ones(dim), "norm.bias": torch.zeros(dim)}
    for i in range(depth):
        for name, shape in (("norm1", (dim,)), ("norm2", (dim,))):
            state[f"blocks.{i}.{name}.weight"] = torch.ones(shape)
            state[f"blocks.{i}.{name}.bias"] = torch.zeros(shape)
        for name, (o, k) in (("attn.qkv", (3 * dim, dim)), ("attn.proj", (dim, dim)),
                             ("mlp.fc1", (4 * dim, dim)), ("mlp.fc2", (dim, 4 * dim))):
            state[f"blocks.{i}.{name}.weight"] = torch.randn(o, k) * 0.02
            state[f"blocks.{i}.{name}.bias"] = torch.zeros(o)
    torch.save({"teacher": {f"backbone.{k}": v for k, v in state.items()}}, tmp_path / "dino.pth")
    dino = DINOFeatures(tmp_path / "dino.pth")
    out = dino(torch.rand(2, 1, 40, 48))        # padded to 40x48 -> 5x6 patches (pos embed resized)
    assert out.shape == (2, dim, 5, 6) and dino.stride == 8
    assert torch.allclose(out.mean(1), torch.zeros(2, 5, 6), atol=1e-4)   # final LayerNorm
    state.pop("blocks.1.mlp.fc2.bias")
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(InputError):
        DINOFeatures(tmp_path / "broken.pth")


# --- pretraining data and command ---------------------------------------------------------------
def test_natural_images_are_packaged_photographs():
    medical = {"retina", "microaneurysms", "cell", "cells3d", "ihc", "kidney", "brain", "lily",
               "human_mitosis", "skin", "protein_transport", "nickel_solidification", "vortex", "shepp_logan_phantom"}
    assert not medical & (set(NATURAL_RGB) | set(NATURAL_GRAY))
    imgs = load_natural_images(DEFAULT_IMAGES[:2])
    for arr in imgs.values():
        assert arr.shape[0] == 3 and arr.min() >= 0 and arr.max() <= 1 and arr.std() > 0.05


def test_pretrain_stage_trains_once_per_config(tmp_path, capsys, monkeypatch):
    from diffreg.cli import main
    from diffreg.nets.adm import load_adm
    monkeypatch.setenv("DIFFREG_CACHE", str(tmp_path / "cache"))
    config = tmp_path / "adm.json"
    config.write_text(json.dumps({"iterations": 2, "size": 32, "width": 8, "batch": 2,
                                  "images": ["astronaut", "chelsea"]}))
    args = ["pretrain", "--stage", "adm-test", "--kind", "adm_natural_images", "--config", str(config)]
    assert main(args + ["--out", str(tmp_path / "a" / "adm.pt")]) == 0
    capsys.readouterr()
    run = json.loads((tmp_path / "a" / "run.json").read_text())
    assert run["cached"] is False and np.isfinite(run["loss_last_10pct"])
    model = load_adm(tmp_path / "a" / "adm.pt")
    assert model.config.model_channels == 8 and model.num_blocks == 37
    assert main(args + ["--out", str(tmp_path / "b" / "adm.pt")]) == 0
    assert "cached" in capsys.readouterr().out
    assert (tmp_path / "a" / "adm.pt").read_bytes() == (tmp_path / "b" / "adm.pt").read_bytes()
    config.write_text(json.dumps({"iterations": 2, "size": 40}))
    assert main(args + ["--out", str(tmp_path / "c.pt")]) == 2     # one-line error
# the figures of DGIR (Fig. 1, 2) are tested with `diffreg figure` in test_figures.py

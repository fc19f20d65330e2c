"""LDM-Morph: the networks against a fixture from the official code
(`benchmarks/ldm_morph_fidelity.py --write-fixtures tests/fixtures/ldm_morph`), the latent
diffusion features, and the method's hierarchical loss."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from diffreg.features.latent_diffusion import (OFFICIAL_UNET, LatentDiffusion, encoder_block_outputs,
                                               feature_channels, scaled_linear_alphas_cumprod)
from diffreg.nets.adm import ADMUNet
from diffreg.nets.ldm_morph import LDMMorphNet
from diffreg.nets.vq_autoencoder import OFFICIAL_VQ, VQAutoencoder, VQConfig

FIX = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "ldm_morph"


def seeded(shape, seed):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def fixture():
    return torch.load(FIX / "ldm_morph_small.pt", weights_only=True)


def fixture_inputs(fx):
    shape = tuple(fx["shape"])
    mov, fix = seeded(shape, fx["seeds"][0]), seeded(shape, fx["seeds"][1])
    feats = [seeded((1, c, shape[2] // 2 ** (k + 2), shape[3] // 2 ** (k + 2)), fx["seeds"][2] + k) * 2 - 1
             for k, c in enumerate(fx["config"]["feature_channels"])]
    return mov, fix, feats


def test_network_equals_the_official_code(fixture):
    """The official LDMMorph's forward at a small width, random weights loaded strictly."""
    net = LDMMorphNet(**fixture["config"]).eval()
    net.load_state_dict(fixture["state"], strict=True)
    mov, fix, feats = fixture_inputs(fixture)
    with torch.no_grad():
        field = net(mov, fix, feats)
    assert (field - fixture["field"]).abs().max().item() < 1e-5
    assert field.abs().max().item() > 0.05                      # a field that shows the comparison means something


def test_full_network_has_the_official_names_shapes_and_size(fixture):
    with torch.device("meta"):
        net = LDMMorphNet()
    assert [[k, list(v.shape)] for k, v in net.state_dict().items()] == fixture["full_names"]
    assert len(fixture["full_names"]) == 316
    assert sum(p.numel() for p in net.parameters()) == fixture["full_parameters"] == 31_510_854


def test_vq_encoder_equals_the_official_code(fixture):
    vq = VQAutoencoder(VQConfig.from_dict(fixture["vq_config"])).eval()
    missing, unexpected = vq.load_state_dict(fixture["vq_state"], strict=False)
    assert not unexpected and all(k.startswith(("decoder.", "post_quant_conv.", "quantize.")) for k in missing)
    with torch.no_grad():
        z = vq.encode(seeded((1, 1, 64, 64), fixture["seeds"][0]))
    assert (z - fixture["vq_latent"]).abs().max().item() < 1e-5


def test_official_latent_shapes():
    """f = 4: a 128^2 image gives a 32^2 latent of one channel; the U-Net's features of a pair
    have the shapes the official network takes."""
    with torch.device("meta"):
        vq = VQAutoencoder(OFFICIAL_VQ)
        unet = ADMUNet(OFFICIAL_UNET)
    assert OFFICIAL_VQ.factor == 4 and OFFICIAL_VQ.embed_dim == 1
    assert feature_channels(unet) == (256, 384, 640, 896)
    assert [unet.blocks[b].stride for b in (0, 3, 6, 9)] == [1, 2, 4, 8]
    assert sum(p.numel() for p in unet.parameters()) == 22_409_537
    del vq


def test_schedule_is_diffusers_scaled_linear():
    from diffusers import DDPMScheduler

    s = DDPMScheduler(num_train_timesteps=1000, beta_start=0.0015, beta_end=0.0195, beta_schedule="scaled_linear")
    ours = scaled_linear_alphas_cumprod()
    assert torch.allclose(ours.float(), s.alphas_cumprod, atol=1e-6)
    betas = 1 - ours[1:] / ours[:-1]
    assert abs(float(betas[0]) - (0.0015 ** 0.5 + (0.0195 ** 0.5 - 0.0015 ** 0.5) / 999) ** 2) < 1e-12


def tiny_ldm(seed=0, inversion="q_sample"):
    torch.manual_seed(seed)
    vq = VQAutoencoder(VQConfig(ch=8, ch_mult=(1, 2, 2), num_res_blocks=1, attn_resolutions=(), resolution=32,
                                n_embed=16, num_groups=4))
    unet = ADMUNet(OFFICIAL_UNET.__class__(**{**OFFICIAL_UNET.__dict__, "model_channels": 8,
                                               "num_head_channels": 8, "num_groups": 4}))
    return LatentDiffusion(vq, unet, inversion=inversion)


def test_features_shapes_same_noise_and_determinism():
    ldm = tiny_ldm()
    a, b = seeded((1, 1, 32, 32), 1), seeded((1, 1, 32, 32), 2)
    f1 = ldm.features(a, b, torch.Generator().manual_seed(5))
    f2 = ldm.features(a, b, torch.Generator().manual_seed(5))
    f3 = ldm.features(a, b, torch.Generator().manual_seed(6))
    assert [tuple(f.shape) for f in f1] == [(1, c, 8 // 2 ** k, 8 // 2 ** k) for k, c in enumerate(ldm.channels)]
    assert all(torch.equal(x, y) for x, y in zip(f1, f2))
    assert not torch.equal(f1[0], f3[0])
    # the same image as moving and fixed: identical halves (one noise for both latents)
    g = ldm.features(a, a, torch.Generator().manual_seed(5))
    for f in g:
        c = f.shape[1] // 2
        assert torch.allclose(f[:, :c], f[:, c:], atol=1e-6)
    # each level is [M_a, M_b, F_a, F_b] of the U-Net's encoder blocks at t = 1
    zm = ldm.q_sample(ldm.encode(a), 1, torch.randn((1, 1, 8, 8), generator=torch.Generator().manual_seed(5)))
    blocks = encoder_block_outputs(ldm.unet, zm, 1)
    c0 = blocks[0].shape[1]
    assert torch.allclose(f1[0][:, :c0], blocks[0], atol=1e-5)
    assert torch.allclose(f1[0][:, c0:2 * c0], blocks[2], atol=1e-5)


def test_ddim_inversion_is_deterministic_and_differs_from_q_sample():
    ldm = tiny_ldm(inversion="ddim")
    a, b = seeded((1, 1, 32, 32), 1), seeded((1, 1, 32, 32), 2)
    f1 = ldm.features(a, b, torch.Generator().manual_seed(5))
    f2 = ldm.features(a, b, torch.Generator().manual_seed(9))
    assert all(torch.equal(x, y) for x, y in zip(f1, f2))      # no noise drawn
    z = ldm.encode(a)
    # with a U-Net predicting zero noise, DDIM inversion only rescales: sqrt(abar_t) z
    for p in ldm.unet.out.parameters():
        p.data.zero_()
    assert torch.allclose(ldm.ddim_invert(z, 1), ldm.alphas_cumprod[1].sqrt() * z, atol=1e-6)


# ---------------------------------------------------------------------- the method

def ldm_file(tmp_path, seed=0):
    path = tmp_path / "ldm.pt"
    torch.save(tiny_ldm(seed).checkpoint_dict(), path)
    return str(path)


def method(tmp_path, **over):
    from diffreg.methods import build_method

    cfg = {"ldm": ldm_file(tmp_path), "network": "small", "iterations": 2, **over}
    torch.manual_seed(0)
    m = build_method("ldm_morph", 2, cfg, torch.device("cpu"))
    with torch.no_grad():                       # a visible field (the official head starts at N(0, 1e-5))
        m.nets["net"].reg_head[0].weight.normal_(0, 0.05)
    return m


def pair(seed=1):
    return seeded((1, 1, 32, 32), seed), seeded((1, 1, 32, 32), seed + 1)


def latent_gradient(m):
    a, b = pair()
    m.nets["net"].zero_grad()
    terms = m.loss_terms(m.nets, a, b, torch.Generator().manual_seed(3))
    assert float(terms["latent"].detach()) > 0
    if not terms["latent"].requires_grad:           # detached: no path back to the network at all
        return 0.0
    terms["latent"].backward()
    return sum(float(p.grad.abs().sum()) for p in m.nets["net"].parameters() if p.grad is not None)


def test_latent_term_has_a_gradient_in_the_paper_and_none_in_the_official_code(tmp_path):
    paper = latent_gradient(method(tmp_path))
    official = latent_gradient(method(tmp_path, detach_latent=True))
    assert paper > 1e-6
    assert official == 0.0
    # the frozen encoder takes no update either way
    m = method(tmp_path)
    assert all(not p.requires_grad for p in m.nets["ldm"].parameters())


def test_beta_one_removes_the_latent_term_exactly(tmp_path):
    a, b = pair()
    m1 = method(tmp_path, beta=1.0)
    t1 = m1.loss_terms(m1.nets, a, b, torch.Generator().manual_seed(3))
    assert "latent" not in t1
    assert torch.equal(t1["loss"], 1.0 * t1["pixel"] + 0.01 * t1["smooth"])
    m6 = method(tmp_path)
    t6 = m6.loss_terms(m6.nets, a, b, torch.Generator().manual_seed(3))
    assert torch.allclose(t6["loss"], 0.6 * t6["pixel"] + 0.4 * t6["latent"] + 0.01 * t6["smooth"])
    assert float(t6["latent"].detach()) > 0


def test_smoothness_and_units_on_a_known_field():
    from diffreg.methods.ldm_morph import official_smoothness, to_voxels

    h = w = 9
    ys = torch.linspace(-1, 1, h).view(1, 1, h, 1).expand(1, 1, h, w)
    u = torch.cat([0.1 * ys, torch.zeros_like(ys)], 1)          # phi_y = 0.1 y: slope 0.1 per 2/(h-1)
    # forward difference 0.1 * 2 / (h - 1), times h / 2: 0.1 h / (h - 1) along y in channel 0, zero in
    # channel 1 and along x; the mean over both channels, then over both axes
    expected = (0.1 * h / (h - 1)) ** 2 / 4
    assert abs(float(official_smoothness(u)) - expected) < 1e-7
    # 0.1 in normalised units of a 9-pixel axis is 0.1 * 4 = 0.4 voxels
    assert torch.allclose(to_voxels(torch.full((1, 2, 9, 5), 0.1)), torch.tensor([0.4, 0.2]).view(1, 2, 1, 1))


def test_registration_is_deterministic_for_a_seed_and_reloads(tmp_path):
    from diffreg.methods import load_method

    m = method(tmp_path)
    a, b = pair()
    r1 = m.register(a, b, torch.Generator().manual_seed(7)).displacement
    r2 = m.register(a, b, torch.Generator().manual_seed(7)).displacement
    r3 = m.register(a, b, torch.Generator().manual_seed(8)).displacement
    assert torch.equal(r1, r2) and not torch.equal(r1, r3)
    assert r1.shape == (1, 2, 32, 32) and r1.abs().max() > 1e-3
    (tmp_path / "ldm.pt").unlink()                       # the trained model holds the LDM's weights
    m.save(tmp_path / "model")
    again = load_method(tmp_path / "model", torch.device("cpu"))
    assert torch.equal(again.register(a, b, torch.Generator().manual_seed(7)).displacement, r1)


def test_ablations_build_the_paper_variants(tmp_path):
    base = method(tmp_path, features=False, lgca=False, beta=1.0)
    assert "ldm" not in base.nets and not hasattr(base.nets["net"], "c1")
    no_lgca = method(tmp_path, lgca=False)
    assert hasattr(no_lgca.nets["net"], "c1") and not hasattr(no_lgca.nets["net"], "lwca1")
    a, b = pair()
    for m in (base, no_lgca):
        assert m.register(a, b, torch.Generator().manual_seed(1)).displacement.shape == (1, 2, 32, 32)


def test_training_runs_through_the_trainer(tmp_path):
    from diffreg.methods import TrainingSet

    m = method(tmp_path, iterations=3, log_every=1)
    imgs = [seeded((32, 32), s).numpy() for s in range(4)]
    stats = m.fit(TrainingSet(["a", "b"], imgs[:2], imgs[2:]), log_path=tmp_path / "log.csv")
    assert stats["iterations"] == 3
    assert "latent" in (tmp_path / "log.csv").read_text().splitlines()[0]


# ---------------------------------------------------------------------- the pretraining stage

TINY_STAGE = {"vq_width": 8, "codebook": 16, "vq_iterations": 3, "vq_batch": 2, "unet_width": 8,
              "unet_iterations": 3, "unet_batch": 2, "checkpoint_every": 2}


def test_stage_trains_both_models_through_the_trainer_and_caches(tmp_path, monkeypatch):
    from diffreg.features.latent_diffusion import load_latent_diffusion
    from diffreg.methods import TrainingSet
    from diffreg.stages import USES_DATA, get_stage

    monkeypatch.setenv("DIFFREG_CACHE", str(tmp_path / "cache"))
    imgs = [seeded((32, 32), s).numpy() for s in range(4)]
    data = TrainingSet(["a", "b"], imgs[:2], imgs[2:])
    stage = get_stage("ldm_morph_latent_diffusion")
    assert USES_DATA["ldm_morph_latent_diffusion"]
    s1 = stage(TINY_STAGE, tmp_path / "one" / "ldm.pt", data, 0, "cpu", 1)
    assert not s1["cached"] and s1["vq"]["iterations"] == 3 and s1["unet"]["iterations"] == 3
    logs = (tmp_path / "one" / "ldm.vq_log.csv").read_text().splitlines()[0]
    assert "reconstruction" in logs and "codebook" in logs
    assert not list((tmp_path / "cache" / "ldm_morph").glob("*.ckpt"))      # checkpoints removed when done
    s2 = stage(TINY_STAGE, tmp_path / "two" / "ldm.pt", data, 0, "cpu", 1)
    assert s2["cached"] and s2["digest"] == s1["digest"]
    other = TrainingSet(["a", "b"], imgs[:2], imgs[1:3])                   # other images: another model
    from diffreg.stages.ldm_morph import digest
    assert digest(TINY_STAGE, 0, other) != digest(TINY_STAGE, 0, data)
    ldm = load_latent_diffusion(tmp_path / "two" / "ldm.pt")
    f = ldm.features(seeded((1, 1, 32, 32), 1), seeded((1, 1, 32, 32), 2), torch.Generator().manual_seed(0))
    assert [x.shape[1] for x in f] == list(ldm.channels)


def test_official_checkpoint_layout_loads(tmp_path):
    """An official Lightning checkpoint: first_stage_model.* (with its loss.*), model.diffusion_model.*."""
    from diffreg.features.latent_diffusion import load_latent_diffusion

    ldm = tiny_ldm()
    sd = {**{f"first_stage_model.{k}": v for k, v in ldm.vq.state_dict().items()},
          "first_stage_model.loss.logvar": torch.zeros(()),
          **{f"model.diffusion_model.{k}": v for k, v in ldm.unet.state_dict().items()}}
    torch.save({"state_dict": sd, "global_step": 1}, tmp_path / "official.ckpt")
    # the official architecture does not fit the tiny weights: a clear error, not a partial load
    from diffreg.errors import InputError
    with pytest.raises(InputError, match="do not fit"):
        load_latent_diffusion(tmp_path / "official.ckpt")


def test_pretrain_command_trains_on_both_frames(tmp_path, monkeypatch):
    """`diffreg pretrain` as the pipeline calls it (the modalities of the rows the stage serves)."""
    import json

    from diffreg.cli import main
    from diffreg.io import write_image

    monkeypatch.setenv("DIFFREG_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "data"
    for k, sid in enumerate(["p1_2CH", "p2_2CH"]):
        for j, mod in enumerate(["ed", "es"]):
            write_image(data / f"{sid}_{mod}.nii.gz", seeded((32, 32), 10 * k + j).numpy())
            write_image(data / f"{sid}_{mod}_labels.nii.gz", np.zeros((32, 32), np.uint8))
    cfg = tmp_path / "stage.json"
    cfg.write_text(json.dumps(TINY_STAGE))
    out = tmp_path / "out" / "ldm.pt"
    assert main(["pretrain", "--stage", "s", "--kind", "ldm_morph_latent_diffusion", "--config", str(cfg),
                 "--data-dir", str(data), "--subjects", "p1_2CH,p2_2CH", "--moving-modality", "ed",
                 "--fixed-modality", "es", "--device", "cpu", "--out", str(out)]) == 0
    run = json.loads((out.parent / "run.json").read_text())
    assert run["subjects"] == 2 and out.is_file()
